"""Every error Ephyra raises, under one root.

::

    EphyraError                         a failure of Ephyra's own                     (exit 1)
    ├── UsageError                      bad input, refused before anything changed    (exit 2)
    │   ├── CloudNotFound               a cloud name missing from clouds.yaml
    │   ├── RunNotFound
    │   ├── EnvironmentNotFound         an environment not imported (``ephyra env``)
    │   ├── IllegalTransition           a run asked to go where its state table forbids
    │   ├── PlanRefused                 preflight found nodes that cannot move
    │   ├── SecretsUnavailable          masked BMC secrets and no credential source
    │   ├── NotAuthenticated            no token, or one the API does not accept (HTTP 401)
    │   ├── NotAllowed                  the policy does not let this caller do that (HTTP 403)
    │   ├── NotOurs                     a maintenance mark someone else set
    │   ├── BodyTooLarge                a request's body over the server's limit (HTTP 413)
    │   └── PluginError                 no plugin of that name, or it refused its options
    ├── LockHeld                        another run holds the lock (clouds, hosts)    (exit 3)
    ├── BackendError                    a journal, store, lock service, board, etcd or
    │   │                               database could not be reached or opened       (exit 4)
    │   ├── StoreError                  the versions store failed or refused a change
    │   │   └── LeaseExpired            a lease ran out: its keys are gone
    │   ├── BoardError                  the jobboard (etcd) failed or refused a change
    │   └── EtcdAuthError               etcd refused the login of the URL's user
    ├── CloudError                      a cloud's API answered with an error          (HTTP 502)
    │   ├── ControlPlaneUnreachable     a cloud (its Keystone or an endpoint) could
    │   │   │                           not be connected to, or answered 5xx          (HTTP 503)
    │   │   └── CloudTimeout            ... or did not answer in time                 (HTTP 504)
    │   ├── CloudAuthFailed             the cloud's Keystone refused its credentials  (HTTP 502)
    │   └── EndpointMissing             the cloud offers no endpoint for the service  (HTTP 502)
    ├── NotifyFailed                    a notification not delivered now (sent again later)
    │   └── NotifyRefused               ... refused for good by its target (a 4xx)
    ├── StepFailed                      a step could not reach its goal
    │   ├── StrategyFailed              an upgrade strategy's tool failed
    │   ├── NoDowngrade                 a strategy that cannot go back was asked to
    │   ├── GateFailed                  a health gate stayed red past its timeout
    │   ├── SelfHealError               a self-healing service not told of a maintenance
    │   ├── ServerInError               Nova put a server in ERROR (its fault said)
    │   ├── DrainHalted                 servers left on a host the drain gave up on
    │   └── CommandTimeout              a command ran past its time limit and was killed
    ├── Interrupted                     the run was asked to stop                     (exit 130)
    │   ├── PauseRequested
    │   └── AbortRequested
    ├── HandBack                        a conductor gives its job back to the board
    └── NodeDeferred                    a workload asks that a node be retried later (not a
                                        failure)

Only the command line exits, with ``exit_code``; the API answers each with the status and
code of :mod:`ephyra.operations.codes`. One error is also a library's own: the etcd login raises
:class:`EtcdAuthError` as an etcd3gw ``Etcd3Exception`` too (``ephyra.etcd``), so that tooz,
the jobboard and the store take it for the etcd failure it is; that adapter class is the
only error class defined outside this module. Nothing here imports anything: every module
can raise these at no cost.
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


class NotOurs(UsageError):
    """The service was disabled by someone else: Ephyra leaves it disabled."""


class BodyTooLarge(UsageError):
    """A request's body over the server's limit (413)."""


class PluginError(UsageError):
    """No plugin of that name in its namespace, or one that refused its options (or could
    not be loaded): refused before anything changed."""


class LockHeld(EphyraError):
    exit_code = 3


class BackendError(EphyraError):
    """A backend Ephyra keeps its state in (journal, store, locks, board: a database or
    etcd) could not be reached, opened, or refused the change."""

    exit_code = 4


class StoreError(BackendError):
    """The store cannot be reached or refused an operation."""


class LeaseExpired(StoreError):
    """A lease ran out (or was revoked): its keys are gone, and no key can be written
    under it any more. Take a new lease and write them again."""


class BoardError(BackendError):
    """The board (etcd) could not be reached or refused a change."""


class EtcdAuthError(BackendError):
    """etcd refused the login of the URL's user."""

    def __init__(self, message: str) -> None:
        # not super(): the adapter's next base is etcd3gw's, which drops the message
        Exception.__init__(self, message)
        self.detail_text: str | None = message  # where etcd3gw keeps its errors' text


class CloudError(EphyraError):
    pass


class ControlPlaneUnreachable(CloudError):
    """A cloud could not be connected to (its Keystone, or the endpoint of a service), or
    answered 5xx: a run leaves the work as it is, to be resumed once it is back."""


class CloudTimeout(ControlPlaneUnreachable):
    """A cloud did not answer in time."""


class CloudAuthFailed(CloudError):
    """The cloud's Keystone refused the credentials of clouds.yaml (wrong password, user
    or project)."""


class EndpointMissing(CloudError):
    """The cloud has no endpoint for a service Ephyra needs (none in its catalog, none in
    clouds.yaml): a bare-metal-only cloud asked for compute hosts, say."""


class NotifyFailed(EphyraError):
    """A notification could not be delivered now (its target down): it is sent again
    later, from the journal."""


class NotifyRefused(NotifyFailed):
    """The target refused the notification for good (a 4xx answer other than 408 or 429):
    it is not sent again, and delivery goes on with the next."""


class StepFailed(EphyraError):
    pass


class StrategyFailed(StepFailed):
    """An upgrade or downgrade command failed; the message says which and how."""

    #: The exit code of the command, when it ended with one that is not a success.
    returncode: int | None = None


class NoDowngrade(StepFailed):
    """The strategy cannot take this target back to its previous version."""


class GateFailed(StepFailed):
    """A health gate stayed red."""


class SelfHealError(StepFailed):
    """A self-healing or alerting service could not be told of a batch's maintenance
    (the upgrade run pauses, saying why)."""


class ServerInError(StepFailed):
    """Nova put a server in ERROR (its fault in the message)."""


class DrainHalted(StepFailed):
    """Servers could not be moved off a host; the host stays in maintenance."""


class CommandTimeout(StepFailed):
    """A command ran past its time limit and was killed (with its children)."""

    def __init__(self, command: str, timeout: float) -> None:
        super().__init__(f"{command!r} timed out after {timeout:g}s")
        self.timeout = timeout


class Interrupted(EphyraError):
    exit_code = 130


class PauseRequested(Interrupted):
    pass


class AbortRequested(Interrupted):
    pass


class HandBack(EphyraError):
    """The job goes back on the board, unclaimed, for this or another conductor."""


class NodeDeferred(EphyraError):
    """A workload asks that this node be moved later."""
