"""Every failure to reach something ends in one line: which service, which cloud or address
(no credential), and why; exit 1 (4 for a backend); the traceback only with ``--debug``.
Through the API the same failures answer 502, 503 or 504 with their code and the same
message, logged once. Against real things: a closed port, a port that never answers, a
real Keystone refusing a wrong password and offering no compute endpoint, an Ironic-only
cloud as the demo's (``auth_type: none``)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from testbed.ironic import free_port
from testbed.keystone import Keystone
from tests.functional.ephyra_cli import Ephyra, Result
from tests.functional.test_api import ADMIN, Server

pytestmark = pytest.mark.functional

WRONG = "not-the-password-9f3"  # what clouds.yaml says for the `wrong` cloud
SECRET = "s3cret-never-shown"  # the `closed` cloud's password


@pytest.fixture(scope="module")
def silent() -> Iterator[socket.socket]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock


@pytest.fixture(scope="module")
def world(
    keystone: Keystone, silent: socket.socket, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Ephyra, dict[str, str]]:
    """A clouds.yaml with clouds that cannot be used, each its own way; and what they point at."""
    root = tmp_path_factory.mktemp("reach")
    closed = f"http://127.0.0.1:{free_port()}/v3"
    quiet = f"http://127.0.0.1:{silent.getsockname()[1]}/v3"
    admin = keystone.clouds_entry("admin", keystone.admin_password, "admin")
    wrong = keystone.clouds_entry("admin", WRONG, "admin")
    clouds = {
        "closed": {**admin, "auth": {**admin["auth"], "auth_url": closed, "password": SECRET}},
        "quiet": {**admin, "auth": {**admin["auth"], "auth_url": quiet}, "api_timeout": 1},
        "wrong": wrong,
        "nocompute": admin,  # the testbed's Keystone lists no endpoint
        "ironic-only": {
            "auth_type": "none",
            "baremetal_endpoint_override": f"http://127.0.0.1:{free_port()}",
        },
    }
    clouds_yaml = root / "clouds.yaml"
    clouds_yaml.write_text(yaml.safe_dump({"clouds": clouds}))
    return Ephyra(clouds_yaml, root / "state"), {
        "closed": closed,
        "quiet": quiet,
        "keystone": keystone.url,
    }


def one_line(result: Result, code: int) -> str:
    """The one line ``ephyra`` printed on stderr, ending with ``code``."""
    assert result.code == code, result.err
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ephyra: error: "), result.err
    assert "Traceback" not in result.err and SECRET not in result.err and WRONG not in result.err
    return lines[0].removeprefix("ephyra: error: ")


def test_a_keystone_at_a_closed_port(world: tuple[Ephyra, dict[str, str]]) -> None:
    ephyra, at = world
    expected = (
        "closed: cannot negotiate the compute API version: "
        f"Keystone at {at['closed']}/auth/tokens unreachable: connection refused"
    )
    assert one_line(ephyra("host", "show", "--os-cloud", "closed"), 1) == expected
    assert one_line(ephyra("inventory", "show", "--os-cloud", "closed"), 1) == (
        "closed: cannot find the identity endpoint in region RegionOne: "
        f"Keystone at {at['closed']}/auth/tokens unreachable: connection refused"
    )
    debug = ephyra("--debug", "host", "show", "--os-cloud", "closed")
    assert debug.code == 1 and "Traceback" in debug.err and "ConnectionRefusedError" in debug.err
    assert debug.err.rstrip().endswith(f"ephyra: error: {expected}") and SECRET not in debug.err


def test_a_keystone_that_never_answers(world: tuple[Ephyra, dict[str, str]]) -> None:
    ephyra, at = world
    assert one_line(ephyra("host", "show", "--os-cloud", "quiet"), 1) == (
        "quiet: cannot negotiate the compute API version: "
        f"Keystone at {at['quiet']}/auth/tokens: timed out"
    )


def test_a_wrong_password(world: tuple[Ephyra, dict[str, str]]) -> None:
    ephyra, at = world
    line = one_line(ephyra("host", "plan", "--os-cloud", "wrong", "compute-1"), 1)
    assert line == (
        "wrong: cannot negotiate the compute API version: "
        f"Keystone at {at['keystone']}/auth/tokens refused the credentials of clouds.yaml "
        "(HTTP 401)"
    )


def test_a_cloud_without_a_compute_endpoint(world: tuple[Ephyra, dict[str, str]]) -> None:
    ephyra, _ = world
    for cloud, service in (("nocompute", "compute (Nova)"), ("ironic-only", "compute (Nova)")):
        line = one_line(ephyra("host", "show", "--os-cloud", cloud), 1)
        assert line == (
            f"{cloud}: cannot negotiate the compute API version: the cloud has no {service} "
            "endpoint (none in its catalog nor in clouds.yaml)"
        )


def test_an_ironic_at_a_closed_port(world: tuple[Ephyra, dict[str, str]]) -> None:
    ephyra, _ = world
    line = one_line(ephyra("forklift", "plan", "--from", "ironic-only", "--to", "nocompute"), 1)
    assert re.fullmatch(
        r"ironic-only: cannot list nodes: bare metal \(Ironic\) at http://127\.0\.0\.1:\d+: "
        r"unreachable, or it serves no API version document",
        line,
    ), line


def test_etcd_and_the_journal_say_why(world: tuple[Ephyra, dict[str, str]], tmp_path: Path) -> None:
    ephyra, _ = world
    etcd = f"etcd3+http://127.0.0.1:{free_port()}"
    line = one_line(ephyra("version", "status", env={"EPHYRA_STORE": etcd}), 4)
    assert line == f"etcd at {etcd}: connection refused"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    journal = f"sqlite:///{blocker}/sub/journal.db"  # its directory cannot be made: a file
    assert one_line(ephyra("--journal", journal, "run", "list"), 4) == (
        f"cannot open journal {journal}: {blocker}/sub: not a directory"
    )
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"t" * 24: {"user": "a", "project": "p", "roles": []}}))
    tokens.chmod(0o600)
    port = str(free_port())
    served = ephyra("--journal", journal, "serve", "--port", port, "--tokens", str(tokens))
    assert one_line(served, 4) == f"cannot open journal {journal}: {blocker}/sub: not a directory"
    postgres = f"postgresql+psycopg2://ephyra:{SECRET}@127.0.0.1:{free_port()}/ephyra"
    line = one_line(ephyra("run", "list", env={"EPHYRA_JOURNAL": postgres}), 4)
    assert line.startswith(f"cannot open journal {postgres.replace(SECRET, '***')}: ")
    assert line.endswith("failed: Connection refused")


def test_bad_input_exits_2(world: tuple[Ephyra, dict[str, str]], tmp_path: Path) -> None:
    ephyra, _ = world
    result = ephyra("forklift", "plan", "--from", "ironic-only", "--to", "nocompute",
                    "--credentials", "nosuch:x")  # fmt: skip
    assert (
        one_line(result, 2) == "no ephyra.credentials plugin named 'nosuch' (known: file, source)"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text("release: r2\nroles:\n  compute: strategy: x\n")
    assert one_line(ephyra("upgrade", "plan", "--spec", str(spec)), 2) == (
        f"cannot read the specification {spec}: line 3, column 20: "
        "mapping values are not allowed here"
    )


@pytest.fixture(scope="module")
def server(
    world: tuple[Ephyra, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    tmp = tmp_path_factory.mktemp("reach-serve")
    served = Server(world[0], tmp, config={})
    yield served, tmp / "serve.log"
    served.stop()


@pytest.mark.parametrize(
    ("path", "status", "code", "message"),
    [
        (
            "/v1/hosts?cloud=closed",
            503,
            "cloud_unreachable",
            "closed: cannot negotiate the compute API version: Keystone at {closed}/auth/tokens "
            "unreachable: connection refused",
        ),
        (
            "/v1/inventory?source=openstack:closed",
            503,
            "cloud_unreachable",
            "closed: cannot find the identity endpoint in region RegionOne: "
            "Keystone at {closed}/auth/tokens unreachable: connection refused",
        ),
        (
            "/v1/hosts?cloud=quiet",
            504,
            "cloud_timeout",
            "quiet: cannot negotiate the compute API version: Keystone at {quiet}/auth/tokens: "
            "timed out",
        ),
        (
            "/v1/hosts?cloud=wrong",
            502,
            "cloud_auth_failed",
            "wrong: cannot negotiate the compute API version: Keystone at {keystone}/auth/tokens "
            "refused the credentials of clouds.yaml (HTTP 401)",
        ),
        (
            "/v1/hosts?cloud=ironic-only",
            502,
            "endpoint_missing",
            "ironic-only: cannot negotiate the compute API version: the cloud has no compute "
            "(Nova) endpoint (none in its catalog nor in clouds.yaml)",
        ),
    ],
)
def test_the_api_answers_the_same_line(
    world: tuple[Ephyra, dict[str, str]],
    server: tuple[Server, Path],
    path: str,
    status: int,
    code: str,
    message: str,
) -> None:
    served, log = server
    answer = served.call("GET", path, ADMIN)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["message"] == message.format(**world[1])
    assert "Traceback" not in answer.text and SECRET not in answer.text
    assert WRONG not in answer.text
    served.call("GET", "/healthz")  # the log line of the failure is written before this answer
    logged = [line for line in log.read_text().splitlines() if error["request_id"] in line]
    assert len(logged) == 1 and error["message"] in logged[0], logged
    assert "Traceback" not in log.read_text()


def test_a_server_or_its_keystone_at_a_closed_port(world: tuple[Ephyra, dict[str, str]]) -> None:
    ephyra, at = world
    url = f"http://127.0.0.1:{free_port()}"
    result = ephyra("--url", url, "run", "list", env={"EPHYRA_TOKEN": "t" * 24})
    assert one_line(result, 1) == f"cannot reach ephyra serve at {url}: connection refused"
    # no token given: one of the cloud's Keystone, which cannot be reached either
    result = ephyra("--url", "https://127.0.0.1:1", "run", "list", env={"OS_CLOUD": "closed"})
    assert one_line(result, 1) == (
        "closed: cannot get a Keystone token for --url: "
        f"Keystone at {at['closed']}/auth/tokens unreachable: connection refused"
    )
