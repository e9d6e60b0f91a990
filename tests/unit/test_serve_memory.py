"""ephyra serve keeps the garbage collector's full passes short: what is loaded before
serving is frozen, and a full pass that leaves many objects to walk again freezes them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

#: Run in a process of its own: freezing is for the whole interpreter.
CHECK = """
import gc, sys
from ephyra.cli.serve import FREEZE_AT, WARM, settle_memory

settle_memory()
assert [m for m in WARM if m not in sys.modules] == [], "not loaded before serving"
frozen = gc.get_freeze_count()
assert frozen > 100_000, frozen  # Ephyra's code and its libraries
assert len(gc.get_objects(2)) < FREEZE_AT, len(gc.get_objects(2))

few = [[i] for i in range(100)]  # outlive a full pass, but too few to freeze
gc.collect()
assert gc.get_freeze_count() == frozen, (gc.get_freeze_count(), frozen)
assert len(gc.get_objects(2)) >= 100

late = [[i] for i in range(FREEZE_AT)]  # as the code a later request imports
gc.collect()
assert gc.get_freeze_count() >= frozen + FREEZE_AT, (gc.get_freeze_count(), frozen)
assert gc.get_objects(2) == [], len(gc.get_objects(2))
print("settled")
"""


def test_what_outlives_a_full_pass_in_numbers_is_frozen() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "settled"
