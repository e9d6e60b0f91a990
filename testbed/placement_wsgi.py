"""Placement's WSGI application for :mod:`testbed.wsgi_serve`, whatever its release.

``testbed.placement_wsgi:application`` is ``placement.wsgi.api:application``, with one
difference for the releases before 16.0 that the testbed plays from a venv sharing the
testbed's dependencies (:mod:`testbed.novavenv`): Placement 15 reads ``[oslo_policy]
enforce_scope`` at start, only to silence oslo.policy's scope-check warnings when it is
false, and oslo.policy 6 (which Placement 16 and Nova 34 require) no longer has that
option: Placement 15 would stop with ``NoSuchOptError``. Each configuration Placement
registers its options in gets that option too when oslo.policy lacks it, with the value
oslo.policy 6 always acts on (scope enforced). Where it exists, nothing changes.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

from oslo_config import cfg

_placement_conf: Any = importlib.import_module("placement.conf")
_register_opts = _placement_conf.register_opts
ENFORCE_SCOPE = cfg.BoolOpt(
    "enforce_scope",
    default=True,
    help="Placement before 16.0 reads it; oslo.policy 6 always enforces scope",
)


def register_opts(conf: Any) -> None:
    """Placement's ``register_opts``, then ``[oslo_policy] enforce_scope`` if missing."""
    _register_opts(conf)
    with contextlib.suppress(cfg.DuplicateOptError):  # oslo.policy has it: that one
        conf.register_opt(ENFORCE_SCOPE, group="oslo_policy")


_placement_conf.register_opts = register_opts
#: Placement's application, made (on import) once the option is there.
application: Any = importlib.import_module("placement.wsgi.api").application
