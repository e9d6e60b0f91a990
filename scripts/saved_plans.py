"""Write the saved expected plans anew from their inputs, after a deliberate change of a
planner; read the diff (``git diff tests/unit/*/plans``) and commit it if it is what you meant.
The tests never write these files.

    .venv/bin/python scripts/saved_plans.py            # every kind
    .venv/bin/python scripts/saved_plans.py forklift   # one kind: forklift, compute, upgrade
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: kind -> the test module whose SAVED names its saved plans and how a plan is made.
KINDS = {
    "forklift": "tests.unit.forklift.test_plan",
    "compute": "tests.unit.compute.test_plan",
    "upgrade": "tests.unit.upgrade.test_plan",
}


def main(argv: list[str]) -> int:
    unknown = [kind for kind in argv if kind not in KINDS]
    if unknown:
        print(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}", file=sys.stderr)
        return 2
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    for kind in argv or list(KINDS):
        saved = importlib.import_module(KINDS[kind]).SAVED
        for case in saved.cases:
            saved.write(case)
            print(f"{kind}: {(saved.folder / case).relative_to(ROOT)}.{{txt,yaml}}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
