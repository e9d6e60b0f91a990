"""How an environment and its nodes change state, each change a pure function of the
environment (the store saves it with a compare-and-swap).

::

    environment  operational ──upgrade(release)──> upgrade ──last node installed──> operational
    node         ready ──cutover──> detached ──rollback──> ready
                 pending_release_id set by upgrade, cleared (release_id := it) by installed
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ephyra.errors import IllegalTransition, UsageError
from ephyra.netscheme.model import Environment, Node

ENV_MOVES = {("operational", "upgrade"), ("upgrade", "operational")}
NODE_MOVES = {("ready", "detached"), ("detached", "ready")}


def _env_status(env: Environment, status: str) -> Environment:
    if env.status != status and (env.status, status) not in ENV_MOVES:
        raise IllegalTransition(f"environment {env.name} cannot go from {env.status} to {status}")
    return env.model_copy(update={"status": status})


def _with_nodes(env: Environment, change: Callable[[Node], Node]) -> Environment:
    return env.model_copy(update={"nodes": [change(n) for n in env.nodes]})


def upgrade(release_id: int, nodes: Iterable[str] = ()) -> Callable[[Environment], Environment]:
    """``PUT /clusters/<id>/upgrade``: the environment goes under upgrade to a new release,
    and the nodes named (by default its primary controller) are to be reinstalled with it.
    Naming more nodes of the same upgrade later adds them."""

    def how(env: Environment) -> Environment:
        if env.status == "upgrade" and release_id != env.release_id:
            raise IllegalTransition(
                f"environment {env.name} is already being upgraded to release {env.release_id}"
            )
        if env.status == "operational" and release_id == env.release_id:
            raise UsageError(f"environment {env.name} already runs release {release_id}")
        names = list(nodes) or [n.name for n in env.nodes if "primary-controller" in n.roles]
        if not names:
            raise UsageError(
                f"environment {env.name} has no primary-controller: name the nodes to reinstall"
            )
        chosen = {env.node(ref).name for ref in names}
        for name in sorted(chosen):
            node = env.node(name)
            if node.release_id == release_id:
                raise UsageError(f"{name} already runs release {release_id}")
        env = _env_status(env, "upgrade").model_copy(update={"release_id": release_id})

        def pend(node: Node) -> Node:
            if node.name in chosen:
                return node.model_copy(update={"pending_release_id": release_id})
            return node

        return _with_nodes(env, pend)

    return how


def installed(ref: str) -> Callable[[Environment], Environment]:
    """A node was reinstalled with its pending release: it runs it and is ready. The last
    one makes the environment operational again."""

    def how(env: Environment) -> Environment:
        node = env.node(ref)
        if node.pending_release_id is None:
            raise IllegalTransition(f"{node.name} has no pending release to be installed with")

        def done(n: Node) -> Node:
            if n.name != node.name:
                return n
            return n.model_copy(
                update={
                    "release_id": n.pending_release_id,
                    "pending_release_id": None,
                    "status": "ready",
                }
            )

        env = _with_nodes(env, done)
        if all(n.release_id == env.release_id for n in env.nodes):
            env = _env_status(env, "operational")
        return env

    return how


def node_status(names: Iterable[str], status: str) -> Callable[[Environment], Environment]:
    """Nodes detached from (or joined back to) their VIP networks by a cutover."""
    chosen = set(names)

    def how(env: Environment) -> Environment:
        def move(node: Node) -> Node:
            if node.name not in chosen or node.status == status:
                return node
            if (node.status, status) not in NODE_MOVES:
                raise IllegalTransition(f"{node.name} cannot go from {node.status} to {status}")
            return node.model_copy(update={"status": status})

        return _with_nodes(env, move)

    return how
