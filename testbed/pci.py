"""The PCI devices of the testbed's computes, and the alias servers ask them by.

Each compute with ``pci_devices`` reports that many plain PCI devices of one vendor and
product (:mod:`testbed.nova_driver`); Nova's ``[pci] device_spec`` lets them be passed
through, and ``[pci] alias`` names them :data:`ALIAS`, so a flavor with
``pci_passthrough:alias = nic:1`` gets one."""

from __future__ import annotations

import json

VENDOR, PRODUCT = "8086", "10fb"
ALIAS = "nic"
DEVICE = {"vendor_id": VENDOR, "product_id": PRODUCT}
#: What nova.conf says of them (read by the API, the scheduler and the computes).
SETTINGS = f"""
[pci]
device_spec = {json.dumps(DEVICE)}
alias = {json.dumps({"name": ALIAS, **DEVICE, "device_type": "type-PCI"})}
"""
