"""A PEP 517 build backend of a one-package project, needing nothing but the standard
library: pip builds and installs the demo project of the source strategy's tests offline.

The project's name is in NAME; its version is ``__version__`` in PACKAGE/__init__.py.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from pathlib import Path

NAME = "ephyra-demo"
PACKAGE = "ephyra_demo"
HERE = Path(__file__).resolve().parent


def _version() -> str:
    text = (HERE / PACKAGE / "__init__.py").read_text()
    found = re.search(r'__version__ = "([^"]+)"', text)
    assert found, f"no __version__ in {PACKAGE}/__init__.py"
    return found.group(1)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, str] | None = None,
    metadata_directory: str | None = None,
) -> str:
    version = _version()
    dist = f"{PACKAGE}-{version}"
    files = {
        f"{PACKAGE}/{path.name}": path.read_bytes()
        for path in sorted((HERE / PACKAGE).glob("*.py"))
    }
    files[f"{dist}.dist-info/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {version}\n"
    ).encode()
    files[f"{dist}.dist-info/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: wheel_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [_record_line(name, data) for name, data in files.items()]
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def get_requires_for_build_wheel(config_settings: dict[str, str] | None = None) -> list[str]:
    return []
