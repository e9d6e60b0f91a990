"""The names and versions that come into Ephyra from outside, checked where they enter.

Host names, cloud names and versions come from callers (the command line, the API), from
inventories (a static file, Ansible, PuppetDB, OpenStack) and from the store (the desired
version an agent reads). They name locks, keys and log files and are filled into command
templates, so each is held to a strict pattern wherever it enters: no shell metacharacter,
no ``/``, no white space, bounded in length. A value that fails is refused with a message
that names where it came from and shows at most a short, printable part of it.
"""

from __future__ import annotations

import re

from ephyra.errors import UsageError

#: A cloud of clouds.yaml or a host: letters, digits and ``._:@-`` (``:`` for IPv6
#: addresses and Nova's ``host@backend``), at most 255 characters.
NAME = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}$"
#: A version: letters, digits and ``._+~:-`` (Debian's ``2:29.0.0-0ubuntu1~cloud0``,
#: PEP 440's ``30.1.0rc1``, a git tag), at most 128 characters.
VERSION = r"^[A-Za-z0-9][A-Za-z0-9._+~:-]{0,127}$"

_NAME = re.compile(NAME)
_VERSION = re.compile(VERSION)
SHOWN = 40  # characters of a refused value a message shows


def shown(value: object) -> str:
    """A refused value as a message may show it: printable, and cut short."""
    text = repr(str(value))
    return text if len(text) <= SHOWN else f"{text[: SHOWN - 4]}...' ({len(str(value))} chars)"


def is_name(value: object) -> bool:
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def is_version(value: object) -> bool:
    return isinstance(value, str) and _VERSION.fullmatch(value) is not None


def check_name(value: object, what: str = "host name") -> str:
    """``value`` if it is a valid host or cloud name; else UsageError naming ``what``."""
    if not is_name(value):
        raise UsageError(
            f"{what} {shown(value)} refused: letters, digits and ._:@- only, "
            "starting with a letter or digit, at most 255"
        )
    return str(value)


def check_version(value: object, what: str = "version") -> str:
    """``value`` if it is a valid version; else UsageError naming ``what``."""
    if not is_version(value):
        raise UsageError(
            f"{what} {shown(value)} refused: letters, digits and ._+~:- only, "
            "starting with a letter or digit, at most 128"
        )
    return str(value)
