"""Environments (seed 004): a parallel control plane on the same VIPs, its nodes, their
releases and their deployment information."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as FastPath

from ephyra.api.routes.common import Context, errors
from ephyra.names import NAME
from ephyra.netscheme.model import Environment
from ephyra.netscheme.serializers import Mode
from ephyra.operations.bodies import EnvUpgradeBody

Cluster = Annotated[str, FastPath(pattern=NAME, description="environment id or name")]


def router(ctx: Context) -> APIRouter:
    routes = APIRouter()
    local = ctx.local
    reading, changing = ctx.allowed("env:read"), ctx.allowed("env:change")

    @routes.get("/v1/clusters", tags=["environments"], dependencies=[reading], responses=errors())
    def clusters() -> dict[str, Any]:
        """Every environment: status, release, VIPs and where each node stands."""
        return {"clusters": local.env_list()}

    @routes.post(
        "/v1/clusters",
        tags=["environments"],
        dependencies=[changing],
        responses=errors(400, 413),
    )
    def import_cluster(body: Environment, replace: bool = False) -> dict[str, Any]:
        """Import an environment (networks, VIPs, nodes); ``replace`` overwrites one."""
        return dict(local.env_import(body.model_dump(mode="json"), replace))

    @routes.get(
        "/v1/clusters/{cluster}",
        tags=["environments"],
        dependencies=[reading],
        responses=errors(404),
    )
    def cluster(cluster: Cluster) -> dict[str, Any]:
        """An environment, whole."""
        return local.env_show(cluster)

    @routes.put(
        "/v1/clusters/{cluster}/upgrade",
        tags=["environments"],
        dependencies=[changing],
        responses=errors(400, 404, 409, 413),
    )
    def upgrade_cluster(cluster: Cluster, body: EnvUpgradeBody) -> dict[str, Any]:
        """Put the environment under upgrade to a release; the nodes named (default: the
        primary controller) are to be reinstalled with it."""
        return dict(local.env_upgrade(cluster, body))

    @routes.put(
        "/v1/clusters/{cluster}/nodes/{node}/installed",
        tags=["environments"],
        dependencies=[changing],
        responses=errors(400, 404, 409),
    )
    def node_installed(
        cluster: Cluster, node: Annotated[str, FastPath(pattern=NAME)]
    ) -> dict[str, Any]:
        """Record that a node was reinstalled with its pending release."""
        return dict(local.env_installed(cluster, node))

    @routes.get(
        "/v1/clusters/{cluster}/orchestrator/deployment/defaults",
        tags=["environments"],
        dependencies=[reading],
        responses=errors(400, 404),
    )
    def deployment_defaults(
        cluster: Cluster,
        nodes: Annotated[list[str], Query(min_length=1)],
        mode: Mode | None = None,
    ) -> dict[str, Any]:
        """The deployment information of nodes, in the mode detected (or ``mode``):
        default, isolated or cutover."""
        return {"nodes": local.deployment_info(cluster, nodes, mode)}

    return routes
