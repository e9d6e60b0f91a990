"""``ephyra upgrade``."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any, exit_codes: str) -> None:
    """Add ``ephyra upgrade`` to the command tree."""
    del sub, exit_codes
