"""Reading a strategy's options: each checked for its type when the strategy is built,
every mistake a ``UsageError`` that names the option.

Templates (``{host}``, ``{version}``, ``{services}``, ``{service}``, ``{kind}``) are
tried on a sample target, so a misspelt placeholder is refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ephyra.errors import UsageError
from ephyra.strategies.base import Target, render

SAMPLE = Target("host-1", "1.0", ("service-a", "service-b"), "service")

# Options every strategy that runs commands on a host takes.
VIA = "via"  # argv prefix that runs a command line on the host, e.g. "ssh {host}"
ENV = "env"  # extra environment variables of every command
TIMEOUT = "timeout"  # seconds any one command may run
COMMON = (VIA, ENV, TIMEOUT)


class Options:
    """The options of one strategy, refused at once if one is unknown."""

    def __init__(self, strategy: str, data: Mapping[str, Any], known: Collection[str]) -> None:
        self.strategy = strategy
        self.data = dict(data)
        unknown = sorted(str(key) for key in self.data if key not in known)
        if unknown:
            raise UsageError(
                f"the {strategy} strategy has no option {', '.join(map(repr, unknown))} "
                f"(it takes: {', '.join(sorted(known))})"
            )

    def _bad(self, key: str, what: str) -> UsageError:
        return UsageError(f"{key}: {what} (got {self.data.get(key)!r})")

    def text(self, key: str, default: str | None = None) -> str | None:
        """A string (numbers are taken as their text); ``default`` when absent."""
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self._bad(key, "must be a string")
        return str(value)

    def required(self, key: str, what: str) -> str:
        """A non-empty string; ``what`` says what it is, for the error."""
        value = self.text(key)
        if not value or not value.strip():
            raise UsageError(f"{key}: required ({what})")
        return value

    def template(self, key: str, default: str | None = None, *, required: str = "") -> str | None:
        """A string with placeholders, tried on a sample target; ``required`` says what it
        is when it must be given."""
        value = self.required(key, required) if required else self.text(key, default)
        if value is not None:
            check_template(key, value)
        return value

    def texts(self, key: str, what: str, *, required: bool = False) -> list[str]:
        """A list of strings ([] when absent unless ``required``)."""
        value = self.data.get(key)
        if value is None:
            if required:
                raise UsageError(f"{key}: required ({what})")
            return []
        if not isinstance(value, list) or not all(
            isinstance(item, str | int | float) and not isinstance(item, bool) for item in value
        ):
            raise self._bad(key, f"must be a list of strings ({what})")
        items = [str(item) for item in value]
        if required and not items:
            raise UsageError(f"{key}: must not be empty ({what})")
        if any(not item.strip() for item in items):
            raise self._bad(key, "must not hold an empty string")
        return items

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._bad(key, "must be true or false")
        return value

    def seconds(self, key: str = TIMEOUT) -> float | None:
        """A positive number of seconds, or None when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self._bad(key, "must be a positive number of seconds")
        return float(value)

    def choice(self, key: str, choices: Collection[str], default: str) -> str:
        value = self.text(key, default)
        if value is None or value not in choices:
            raise self._bad(key, f"must be one of {', '.join(sorted(choices))}")
        return value

    def environment(self, key: str = ENV) -> dict[str, str]:
        """A mapping of environment variable names to values (templates)."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self._bad(key, "must be a mapping of variable names to values")
        env: dict[str, str] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise UsageError(f"{key}: {name!r} is not an environment variable name")
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise UsageError(f"{key}.{name}: must be a string (got {item!r})")
            check_template(f"{key}.{name}", str(item))
            env[name] = str(item)
        return env

    def via(self) -> str | None:
        return self.template(VIA)


def check_template(key: str, template: str) -> None:
    """Refuse a template whose placeholders are not those of a target."""
    try:
        render(template, SAMPLE)
    except UsageError as exc:
        raise UsageError(
            f"{key}: {exc} (placeholders: {{host}} {{version}} {{services}} {{service}} "
            "{kind}; write a literal brace twice)"
        ) from exc


def rendered(env: Mapping[str, str], target: Target) -> dict[str, str]:
    """Every value of ``env`` rendered for ``target``."""
    return {name: render(value, target) for name, value in env.items()}
