"""The translation of failures to reach something into one line: openstacksdk's and
keystoneauth's errors (``ephyra.clouds.failure``), a connection's reason from the
exception chain (``ephyra.net``), etcd's and the journal's, the API's status of each, and
a YAML file's syntax error."""

from __future__ import annotations

import errno
import socket
import ssl
from pathlib import Path

import pytest
import requests
import yaml
from etcd3gw.exceptions import ConnectionFailedError
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc

from ephyra import net, yamlfile
from ephyra.clouds import failure
from ephyra.engine.journal import Journal
from ephyra.errors import (
    BackendError,
    CloudAuthFailed,
    CloudError,
    CloudTimeout,
    ControlPlaneUnreachable,
    EndpointMissing,
)
from ephyra.etcd import describe
from ephyra.operations.codes import classify

AUTH = "http://keystone.example:5000/v3"


@pytest.fixture(autouse=True)
def clouds_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One cloud, ``c``, whose Keystone is at ``AUTH``."""
    path = tmp_path / "clouds.yaml"
    auth = {"auth_url": AUTH, "username": "u", "password": "pw-secret", "project_name": "p"}
    path.write_text(yaml.safe_dump({"clouds": {"c": {"auth_type": "password", "auth": auth}}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))


def chained(outer: Exception, *inner: BaseException) -> Exception:
    """``outer`` raised while handling ``inner[0]``, itself raised from ``inner[1]``...,
    as the HTTP libraries chain them."""
    cause: BaseException | None = None
    for exc in reversed(inner):
        exc.__cause__ = cause
        cause = exc
    outer.__context__ = cause
    return outer


def refused(url: str) -> Exception:
    return chained(
        ks_exc.ConnectFailure(f"Unable to establish connection to {url}: HTTPConnectionPool(...)"),
        requests.ConnectionError("HTTPConnectionPool(host='x', port=1): Max retries exceeded"),
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    )


def test_keystone_refusing_connections_is_named_with_its_address() -> None:
    error = failure("c", "list compute services", refused(f"{AUTH}/auth/tokens"), "compute")
    assert type(error) is ControlPlaneUnreachable
    assert str(error) == (
        f"c: cannot list compute services: Keystone at {AUTH}/auth/tokens unreachable: "
        "connection refused"
    )
    assert classify(error) == (503, "cloud_unreachable")


def test_a_service_refusing_connections_is_named_by_its_service() -> None:
    url = "http://nova.example:8774/v2.1/os-services?binary=nova-compute"
    error = failure("c", "list compute services", refused(url), "compute (Nova)")
    assert str(error) == (
        "c: cannot list compute services: compute (Nova) at "
        "http://nova.example:8774/v2.1/os-services unreachable: connection refused"
    )


def test_a_name_not_resolved_and_a_timeout() -> None:
    unknown = chained(
        ks_exc.ConnectFailure("Unable to establish connection to http://nowhere.invalid/v3: x"),
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    )
    assert str(failure("c", "log in", unknown)).endswith(
        "http://nowhere.invalid/v3 unreachable: name not resolved"
    )
    slow = ks_exc.ConnectTimeout(f"Request to {AUTH}/auth/tokens timed out")
    error = failure("c", "log in", slow)
    assert type(error) is CloudTimeout
    assert str(error) == f"c: cannot log in: Keystone at {AUTH}/auth/tokens: timed out"
    assert classify(error) == (504, "cloud_timeout")


def test_wrong_credentials() -> None:
    refusal = ks_exc.Unauthorized(
        "The request you have made requires authentication.", url=f"{AUTH}/auth/tokens"
    )
    error = failure("c", "list nodes", refusal, "bare metal (Ironic)")
    assert type(error) is CloudAuthFailed
    assert str(error) == (
        f"c: cannot list nodes: Keystone at {AUTH}/auth/tokens refused the credentials of "
        "clouds.yaml (HTTP 401)"
    )
    assert classify(error) == (502, "cloud_auth_failed")


@pytest.mark.parametrize(
    "missing",
    [
        ks_exc.EndpointNotFound("public endpoint for compute service not found"),
        ks_exc.EmptyCatalog("The service catalog is empty."),
        sdk_exc.NotSupported("The compute service for c: exists but has no supported versions"),
        sdk_exc.ServiceDisabledException("Service 'compute' is disabled because ..."),
    ],
)
def test_a_missing_endpoint(missing: Exception) -> None:
    error = failure("c", "list compute services", missing, "compute (Nova)")
    assert type(error) is EndpointMissing
    assert str(error) == (
        "c: cannot list compute services: the cloud has no compute (Nova) endpoint "
        "(none in its catalog nor in clouds.yaml)"
    )
    assert classify(error) == (502, "endpoint_missing")


def test_a_service_that_serves_no_version_document() -> None:
    lost = ks_exc.DiscoveryFailure(
        "Unable to find a version discovery document at http://127.0.0.1:9, the service is "
        "unavailable or misconfigured."
    )
    error = failure("dead", "list nodes", lost, "bare metal (Ironic)")
    assert type(error) is ControlPlaneUnreachable
    assert str(error) == (
        "dead: cannot list nodes: bare metal (Ironic) at http://127.0.0.1:9: unreachable, or "
        "it serves no API version document"
    )


def test_http_errors_keep_their_status() -> None:
    down = failure("c", "list nodes", sdk_exc.HttpException("boom", http_status=503))
    assert type(down) is ControlPlaneUnreachable and str(down) == "c: cannot list nodes: HTTP 503"
    refusal = sdk_exc.HttpException("Forbidden", details="policy forbids it", http_status=403)
    error = failure("c", "update node n1", refusal)
    assert type(error) is CloudError
    assert str(error) == "c: cannot update node n1: HTTP 403: policy forbids it"
    assert classify(error) == (502, "cloud_error")


def test_no_credential_in_a_failure() -> None:
    url = "http://admin:pw-secret@keystone.example:5000/v3/auth/tokens"
    error = failure("c", "log in", refused(url))
    assert "pw-secret" not in str(error) and "admin:***@" in str(error)


def test_net_why_walks_the_chain() -> None:
    assert net.why(refused("http://x:1")) == "connection refused"
    assert net.why(ValueError("no system error")) is None
    assert net.why(chained(RuntimeError("x"), TimeoutError("timed out"))) == "timed out"
    untrusted = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] ...")
    untrusted.verify_message = "self-signed certificate"
    assert net.why(chained(requests.exceptions.SSLError("x"), untrusted)) == (
        "certificate verify failed: self-signed certificate"
    )


def test_etcd_says_why_a_connection_failed() -> None:
    failed = chained(
        ConnectionFailedError(),
        requests.ConnectionError("HTTPConnectionPool(host='127.0.0.1', port=1): Max retries"),
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    )
    assert describe(failed) == "connection refused"


def test_a_journal_whose_directory_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    url = f"sqlite:///{blocker}/sub/journal.db"
    with pytest.raises(BackendError) as raised:
        Journal(url)
    assert str(raised.value) == f"cannot open journal {url}: {blocker}/sub: not a directory"
    assert raised.value.exit_code == 4


def test_a_yaml_error_names_its_line_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("release: r2\nroles:\n  compute: strategy: x\n")
    with pytest.raises(yaml.YAMLError) as raised:
        yamlfile.read(path)
    assert str(raised.value) == "line 3, column 20: mapping values are not allowed here"
    with pytest.raises(yaml.YAMLError) as raised:
        yamlfile.parse("a: [1, 2\nb: 3\n")
    message = str(raised.value)
    assert "\n" not in message and "<unicode string>" not in message
    assert message.startswith("line 2, column ")
    assert yamlfile.parse("a: 1\n") == {"a": 1}
