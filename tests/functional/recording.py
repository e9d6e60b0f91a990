"""An upgrade strategy that records what the cloud looks like as it runs on each host: a
``command`` strategy whose upgrade and downgrade run a test's Python script with the host,
a log and more arguments, and whose version is what the script last wrote for the host
(``<log>.<host>``, from ``EPHYRA_VERSION``)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: What a recording script ends with: the host's new version, for the version command.
VERSION_OUT = """
with open(f"{log}.{host}", "w") as out:
    out.write(os.environ["EPHYRA_VERSION"])
"""


def recording_strategy(
    script: str, tmp_path: Path, hosts: Iterable[str], *args: str
) -> tuple[dict[str, Any], Path]:
    """The strategy's options, and the log ``script`` appends to (its ``sys.argv``: host,
    log, ``args``). Every host starts at version 0.9.0."""
    probe, log = tmp_path / "probe.py", tmp_path / "probe.log"
    probe.write_text(textwrap.dedent(script) + VERSION_OUT)
    log.touch()
    for host in hosts:
        Path(f"{log}.{host}").write_text("0.9.0")
    command = " ".join([sys.executable, str(probe), "{host}", str(log), *args])
    options = {
        "type": "command",
        "upgrade": command,
        "downgrade": command,
        "version": f"cat {log}.{{host}}",
    }
    return options, log
