"""Every error Ephyra raises, under one root.

::

    EphyraError
    ├── UsageError                 bad input, refused before anything changed   (exit 2)
    │   ├── CloudNotFound          a cloud name missing from clouds.yaml
    │   ├── RunNotFound
    │   ├── EnvironmentNotFound    an environment not imported (``ephyra env``)
    │   ├── IllegalTransition      a run asked to go where its state table forbids
    │   ├── PlanRefused            preflight found nodes that cannot move
    │   ├── SecretsUnavailable     masked BMC secrets and no credential source
    │   ├── NotAuthenticated       no token, or one the API does not accept (HTTP 401)
    │   └── NotAllowed             the policy does not let this caller do that (HTTP 403)
    ├── LockHeld                   another run holds the control-plane pair       (exit 3)
    ├── CloudError                 an API call failed
    │   └── ControlPlaneUnreachable
    ├── StepFailed                 a step could not reach its goal
    ├── PluginError                a plugin could not be loaded or misbehaved
    └── Interrupted                the run was asked to stop                     (exit 130)
        ├── PauseRequested
        └── AbortRequested

``NodeDeferred`` is raised by a workload's ``prepare`` to ask that a node be
retried later; it is not a failure.
"""

from __future__ import annotations


class EphyraError(Exception):
    """Root of every error Ephyra raises."""

    exit_code = 1


class UsageError(EphyraError):
    exit_code = 2


class CloudNotFound(UsageError):
    pass


class RunNotFound(UsageError):
    pass


class EnvironmentNotFound(UsageError):
    pass


class IllegalTransition(UsageError):
    pass


class PlanRefused(UsageError):
    pass


class SecretsUnavailable(UsageError):
    pass


class NotAuthenticated(UsageError):
    pass


class NotAllowed(UsageError):
    pass


class LockHeld(EphyraError):
    exit_code = 3


class CloudError(EphyraError):
    pass


class ControlPlaneUnreachable(CloudError):
    pass


class StepFailed(EphyraError):
    pass


class PluginError(EphyraError):
    pass


class Interrupted(EphyraError):
    exit_code = 130


class PauseRequested(Interrupted):
    pass


class AbortRequested(Interrupted):
    pass


class NodeDeferred(EphyraError):
    """A workload asks that this node be moved later."""
