"""The virt driver of the testbed's nova-computes: Nova's ``FakeLiveMigrateDriver``, sized.

Nova's fake driver reports 1000 VCPUs, 800000 MB and a node UUID drawn at random in every
process, so a restarted nova-compute no longer matches its compute node ("No local node
identity found..."). This subclass

- reports the VCPUs, MB of memory and GB of disk given in the ``[testbed_fake]`` options of
  its configuration, to the hypervisors API and to Placement (whose allocation ratios then
  apply: VCPU 4.0, memory 1.0, disk 1.0, Nova's initial ratios);
- reports ``hypervisor_version = convert_version_to_int(release)``, the ``release`` option
  of ``[testbed_fake]`` (default 1.0.0, so 1000000; ``nova``: the version of the nova
  package installed, 33000002 for 33.0.2), as Nova's libvirt driver reports libvirt's
  version: an upgrade of the compute shows in the hypervisors API once it started again
  (see :mod:`testbed.releases`);
- reports ``pci_devices`` plain PCI devices (``[testbed_fake]``, default none), which
  Nova passes through to a server whose flavor names the testbed's PCI alias;
- keeps one node UUID in ``state_path/compute_id``, as real single-node drivers do, so a
  nova-compute killed and started again finds its compute node and resource provider;
- on start, takes back the servers the database places on its host, as a hypervisor
  whose guests kept running while nova-compute was down;
- records the machine type of a server it spawns (``image_hw_machine_type = pc`` in its
  system metadata, Nova's default for x86_64) as the libvirt driver does, so that
  ``nova-status upgrade check`` finds no server without one.

A snapshot (``createImage``) uploads a small deterministic payload (4 KiB naming the
server) through Nova's image API as the libvirt driver uploads a disk, so the image becomes
``active`` in Glance; Nova's fake driver uploads nothing (the image would stay ``queued``).

Live migration is the parent's: about 5 s, force-complete ends it at once, abort cancels
it. Its flags are driver-wide: one abort or force-complete acts on every live migration
running on that compute at that moment.

Nova loads drivers from ``nova.virt`` only: :mod:`testbed.nova_compute` registers this
module there as ``nova.virt.testbed_fake``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import nova.conf
import nova.virt.node
from nova import context as nova_context
from nova import exception, objects
from nova.compute import task_states
from nova.image import glance
from nova.virt import fake
from oslo_config import cfg
from oslo_serialization import jsonutils

from testbed import pci
from testbed.releases import DEFAULT_RELEASE, resolve, version_int

CONF = nova.conf.CONF
GROUP = "testbed_fake"
#: Bytes of a snapshot's payload.
SNAPSHOT_BYTES = 4096
#: The machine type the libvirt driver records for an x86_64 server by default.
MACHINE_TYPE = "pc"
CONF.register_opts(
    [
        cfg.IntOpt("vcpus", default=16, min=1, help="VCPUs this compute reports"),
        cfg.IntOpt("memory_mb", default=16384, min=1, help="memory this compute reports"),
        cfg.IntOpt("local_gb", default=1024, min=1, help="disk this compute reports"),
        cfg.IntOpt("pci_devices", default=0, min=0, help="PCI devices this compute has"),
        cfg.StrOpt(
            "release",
            default=DEFAULT_RELEASE,
            help="release of this compute (X.Y.Z, or nova: the installed nova's version)",
        ),
    ],
    group=GROUP,
)


class TestbedFakeDriver(fake.FakeLiveMigrateDriver):  # type: ignore[misc]
    """``FakeLiveMigrateDriver`` with configured capacity and release and a stable node
    identity."""

    def __init__(self, virtapi: Any, read_only: bool = False) -> None:
        options = CONF[GROUP]
        self.vcpus = options.vcpus
        self.memory_mb = options.memory_mb
        self.local_gb = options.local_gb
        self.release = resolve(options.release)
        hypervisor_version = version_int(self.release)
        super().__init__(virtapi, read_only)
        self.host_status_base["hypervisor_version"] = hypervisor_version

    def init_host(self, host: str) -> None:
        super().init_host(host)
        context = nova_context.get_admin_context()
        for instance in objects.InstanceList.get_by_host(context, host, expected_attrs=["flavor"]):
            if instance.uuid in self.instances:
                continue
            self.instances[instance.uuid] = fake.FakeInstance(
                instance.name, instance.power_state, instance.uuid
            )
            flavor = instance.flavor
            self.resources.claim(vcpus=flavor.vcpus, mem=flavor.memory_mb, disk=flavor.root_gb)

    def spawn(
        self, context: Any, instance: Any, image_meta: Any, *args: Any, **kwargs: Any
    ) -> None:
        """The parent's spawn, then the machine type in the server's system metadata (the
        compute manager saves it with the server), unless its image names one. (The
        parent calls it without an image at the end of a live migration: the server has
        its machine type already.)"""
        super().spawn(context, instance, image_meta, *args, **kwargs)
        properties = getattr(image_meta, "properties", None)
        if properties is not None and properties.get("hw_machine_type") is None:
            instance.system_metadata["image_hw_machine_type"] = MACHINE_TYPE

    def snapshot(
        self, context: Any, instance: Any, image_id: str, update_task_state: Callable[..., None]
    ) -> None:
        """Upload :func:`snapshot_payload` of the server to the image Nova created."""
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(
            task_state=task_states.IMAGE_UPLOADING,
            expected_state=task_states.IMAGE_PENDING_UPLOAD,
        )
        metadata = {"disk_format": "raw", "container_format": "bare"}
        glance.API().update(context, image_id, metadata, purge_props=False)
        # the bytes through the image API with the same session and token Nova's client
        # uses, but with a Content-Length: glanceclient sends any body chunked, which the
        # testbed's Glance server does not decode
        session, auth = glance._session_and_auth(context)
        endpoint = next(glance.get_api_servers(context)).rstrip("/")
        session.put(
            f"{endpoint}/v2/images/{image_id}/file",
            data=snapshot_payload(instance.uuid),
            auth=auth,
            headers={"Content-Type": "application/octet-stream"},
        )

    def get_host_uptime(self) -> str:
        """What ``uptime`` prints, as drivers of real hypervisors answer."""
        clock = time.strftime("%H:%M:%S")
        return f" {clock} up 1 day,  0:00,  0 users,  load average: 0.00, 0.00, 0.00"

    def get_available_resource(self, nodename: str) -> dict[str, Any]:
        resources: dict[str, Any] = super().get_available_resource(nodename)
        if resources:
            resources["uuid"] = nova.virt.node.get_local_node_uuid()
            resources["pci_passthrough_devices"] = jsonutils.dumps(
                pci_devices(CONF[GROUP].pci_devices)
            )
        return resources

    def get_nodenames_by_uuid(self, refresh: bool = False) -> dict[str, str]:
        return {nova.virt.node.get_local_node_uuid(): self.get_available_nodes()[0]}


def pci_devices(count: int) -> list[dict[str, Any]]:
    """``count`` plain PCI devices (one per bus), as the libvirt driver reports a host's
    devices; Nova passes them through to the servers whose flavor asks for them
    (:mod:`testbed.pci`)."""
    return [
        {
            "address": f"0000:{bus:02x}:00.0",
            "vendor_id": pci.VENDOR,
            "product_id": pci.PRODUCT,
            "dev_type": "type-PCI",
            "status": "available",
            "parent_addr": None,
            "numa_node": None,
            "label": f"label_{pci.VENDOR}_{pci.PRODUCT}",
        }
        for bus in range(1, count + 1)
    ]


def snapshot_payload(server_id: str) -> bytes:
    """What a snapshot of ``server_id`` holds: :data:`SNAPSHOT_BYTES` bytes derived from it."""
    seed = hashlib.sha256(server_id.encode()).digest()
    return (seed * (SNAPSHOT_BYTES // len(seed) + 1))[:SNAPSHOT_BYTES]
