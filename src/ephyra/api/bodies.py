"""What a request asks for: one model per operation that takes more than a name. The
command line fills them from its options, the API reads them from JSON bodies, and
both hand them to the same operations; they are also the OpenAPI document's schemas."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ephyra.errors import UsageError
from ephyra.names import NAME, VERSION

B = TypeVar("B", bound="Body")
#: A cloud of clouds.yaml, a host (they name locks and keys): see :mod:`ephyra.names`.
Name = Annotated[str, Field(pattern=NAME)]
Version = Annotated[str, Field(pattern=VERSION)]
#: Hosts, nodes or sources one request may name, at most.
MAX_ITEMS = 10_000
#: A source, a rule (ROLE=N), an option's value: free text, bounded.
Text = Annotated[str, Field(min_length=1, max_length=4096)]
#: An option's name.
Key = Annotated[str, Field(min_length=1, max_length=64)]


def problems(exc: ValidationError) -> str:
    """What a model refused, one ``field.path: why`` per problem."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @classmethod
    def build(cls: type[B], **fields: Any) -> B:
        """The body from command-line options; bad values are a usage error."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise UsageError(problems(exc)) from exc

    def wire(self) -> dict[str, Any]:
        """The JSON body, as the API names its fields."""
        return self.model_dump(by_alias=True, exclude_none=True)


class ForkliftBody(Body):
    source: str = Field(alias="from", pattern=NAME, description="cloud the nodes leave")
    target: str = Field(alias="to", pattern=NAME, description="cloud the nodes join")
    nodes: list[Name] | None = Field(
        None, max_length=MAX_ITEMS, description="only these nodes (names or UUIDs)"
    )
    concurrency: int = Field(1, ge=1, le=1000, description="nodes moved at once")
    batch_size: int = Field(0, ge=0, description="nodes between two health gates (0: concurrency)")
    max_failures: int = Field(0, ge=0, description="failed nodes tolerated before the run stops")
    workload: str = Field(
        "noop", pattern=NAME, description="workload plugin: noop, command, hadoop"
    )
    workload_options: dict[Key, Text] = Field(default_factory=dict, max_length=64)
    credentials: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="masked BMC secrets: a name the server's operator configured "
        "(ephyra serve --config) or 'source' (in-process also file:PATH)",
    )
    step_timeout: float = Field(1800.0, gt=0)
    health_timeout: float = Field(600.0, gt=0)
    gate_timeout: float = Field(600.0, gt=0)
    max_deferrals: int = Field(20, ge=0)
    defer_wait: float = Field(30.0, ge=0)


class EvacuateBody(Body):
    cloud: str = Field(pattern=NAME, description="cloud from clouds.yaml")
    hosts: list[Name] = Field(
        min_length=1, max_length=MAX_ITEMS, description="compute hosts to empty"
    )
    target: str | None = Field(None, pattern=NAME, description="move every server to this host")
    concurrency: int = Field(4, ge=1, le=1000)
    per_host: int = Field(2, ge=1, le=1000)
    max_per_project: int | None = Field(None, ge=1)
    max_per_group: int = Field(1, ge=0, description="0: no limit")
    fallback: Literal["cold", "stop", "skip"] = "cold"
    on_timeout: Literal["abort", "force-complete"] = "abort"
    migration_timeout: float = Field(600.0, gt=0)
    also_down: list[Name] = Field(default_factory=list, max_length=MAX_ITEMS)


class UpgradeBody(Body):
    spec: dict[str, Any] = Field(description="the upgrade specification (docs/upgrade.md)")
    sources: list[Text] = Field(
        default_factory=list,
        max_length=32,
        description="inventory sources: openstack[:CLOUD] or a name the server's operator "
        "configured (ephyra serve --config); in-process also static:FILE, ...",
    )
    inventory: dict[str, Any] | None = Field(
        None,
        description="a static inventory, inline: the document static:FILE reads "
        "(docs/inventory.md), merged after the sources",
    )
    cloud: str | None = Field(
        None, pattern=NAME, description="the cloud whose APIs gate the upgrade"
    )
    width: int = Field(6, ge=1, le=1000, description="hosts named per batch in the plan's text")


class MaintenanceBody(Body):
    cloud: str = Field(pattern=NAME)
    state: Literal["on", "off"]


class TriggerBody(Body):
    version: Version
    max_at_once: list[Text] = Field(
        default_factory=list, max_length=1000, description="ROLE=N or ROLE=all"
    )
    after: list[Text] = Field(
        default_factory=list, max_length=1000, description="ROLE=DEP[,DEP...]"
    )
    force: bool = False


class VerifyBody(Body):
    version: Version
    hosts: list[Name] = Field(min_length=1, max_length=MAX_ITEMS)


class EnvUpgradeBody(Body):
    release_id: int = Field(ge=1, description="the release to upgrade the environment to")
    nodes: list[Name] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="nodes to reinstall with it, by name or id (default: the primary controller)",
    )
