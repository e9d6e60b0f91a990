"""``ephyra tenant plan|migrate|status|list|pause|resume|abort|rollback|finish``: the
tenant migration run kind's verbs, directly in the ``ephyra tenant`` group (beside
``ephyra tenant maintenance ...``)."""

from __future__ import annotations

from ephyra.cli import runs
from ephyra.cli.tenant import tenant_group


def register(sub: object, exit_codes: str) -> runs.Action:
    """The group ``ephyra tenant``, shared with ``ephyra tenant maintenance``: the run
    kind's verbs are added from the kind."""
    return runs.verbs_of(tenant_group(sub), "tenant", exit_codes)
