"""What a request asks for, the base of every request model: the command line fills one
from its options, the API reads it from a JSON body, and both hand it to the same
operation; the models are also the OpenAPI document's schemas. Each run kind has its
own (``ephyra.forklift.body``...); :mod:`ephyra.operations.bodies` holds the others."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

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


#: Notifiers one request may name, at most.
MAX_NOTIFIERS = 32


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    notify: list[Name] | None = Field(
        None,
        max_length=MAX_NOTIFIERS,
        description="the notifiers a run tells, by the names the operator configured "
        "(default: the configured default; [] tells none)",
    )

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


class PluginSpec(BaseModel):
    """One configured plugin (a notifier, a hand-over): its plugin's name as ``type``, and
    that plugin's options beside it."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1, max_length=64)

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
