"""Start a testbed service only if its configured release can start.

``python -m testbed.release_gate CONF -- ARGV...`` reads the release in the
``[testbed_fake]`` group of ``CONF`` (see :mod:`testbed.releases`). When it is a version
Nova can store (or ``nova``, the version of the nova package this interpreter has
installed) and is not marked ``fail_start``, it replaces itself with ``ARGV`` (same
process, so the supervisor's child pid is the service's); otherwise it prints why and exits
with :data:`EXIT_BROKEN` (78, ``EX_CONFIG``), as a service whose new release is broken
would fail at start.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from testbed.releases import ReleaseError, read_release, resolve, version_int

EXIT_BROKEN = 78
USAGE = "usage: python -m testbed.release_gate CONF -- ARGV..."


def problem(conf: Path) -> str | None:
    """Why the release in ``conf`` cannot start, or None when it can."""
    try:
        release = read_release(conf)
        version_int(resolve(release.version))
    except ReleaseError as exc:
        return str(exc)
    if release.fail_start:
        return f"release {release.version} is marked to fail at start (fail_start = true)"
    return None


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    conf, command = Path(argv[1]), argv[3:]
    reason = problem(conf)
    if reason is not None:
        message = f"testbed.release_gate: {conf.stem} cannot start: {reason} ({conf})"
        print(message, file=sys.stderr)
        return EXIT_BROKEN
    sys.stdout.flush()
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
