"""Reading a strategy's options: each checked for its type when the strategy is built,
every mistake a ``UsageError`` that names the option.

Templates (``{host}``, ``{version}``, ``{services}``, ``{service}``, ``{kind}``) are
tried on a sample target, so a misspelt placeholder is refused before anything runs.

Secrets are referred to, never written in a specification: a value of ``env``, ``facts``
or ``extravars`` may be ``{from_env: NAME}`` (a variable of the environment of the process
that runs the step) or ``{from_file: PATH}`` (a file on the machine that runs the step,
its content without the final line break), read at the moment the step runs. The journal
keeps the reference only. A plain value under a name that looks like a secret
(``DB_PASSWORD``, ``api_token``, ``ssh_key``...) is refused.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from ephyra.errors import StrategyFailed, UsageError
from ephyra.inventory.catalog import WORD, is_secret
from ephyra.strategies.base import Target, render

SAMPLE = Target("host-1", "1.0", ("service-a", "service-b"), "service")

# Options every strategy that runs commands on a host takes.
VIA = "via"  # argv prefix that runs a command line on the host, e.g. "ssh {host}"
ENV = "env"  # extra environment variables of every command
TIMEOUT = "timeout"  # seconds any one command may run
COMMON = (VIA, ENV, TIMEOUT)
#: Options whose values may be secret references (and must be, under a secret's name).
SECRET_OPTIONS = (ENV, "facts", "extravars")
#: The last word of a name that says its value is where a secret is, not the secret
#: (``ANSIBLE_VAULT_PASSWORD_FILE``, ``ssh_private_key_path``).
WHERE_WORDS = frozenset({"file", "path", "dir", "directory"})
FROM_ENV = "from_env"
FROM_FILE = "from_file"


class SecretRef(str):
    """A secret read when a step runs. It is text (so every strategy keeps its ``env``
    typed as text), and that text is the reference, never the secret: only
    :meth:`resolve` reads the secret, and :func:`rendered` calls it."""

    kind: str
    name: str

    def __new__(cls, kind: str, name: str) -> SecretRef:
        made = super().__new__(cls, f"{{{kind}: {name}}}")
        made.kind = kind
        made.name = name
        return made

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return (self.kind, self.name)  # a copy (or a pickle) is the same reference

    def resolve(self, where: str) -> str:
        """The secret, read now; StrategyFailed (naming ``where``, never a content) if it
        cannot be read."""
        if self.kind == FROM_ENV:
            value = os.environ.get(self.name)
            if value is None:
                raise StrategyFailed(f"{where}: {self.name} is not in the environment of Ephyra")
            return value
        path = Path(self.name).expanduser()
        try:
            return path.read_text().removesuffix("\n").removesuffix("\r")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not text"
            raise StrategyFailed(f"{where}: cannot read the secret file {path}: {why}") from exc


def reference(where: str, value: Any) -> SecretRef | None:
    """The secret reference ``value`` is (``{from_env: NAME}`` or ``{from_file: PATH}``),
    None if it is not a mapping naming one; a malformed reference is refused."""
    if isinstance(value, SecretRef):
        return value
    if not isinstance(value, Mapping) or not {FROM_ENV, FROM_FILE} & set(value):
        return None
    if len(value) != 1:
        raise UsageError(
            f"{where}: a secret reference is {{from_env: NAME}} or {{from_file: PATH}}"
        )
    kind, name = next(iter(value.items()))
    if kind == FROM_ENV and not (isinstance(name, str) and name.isidentifier()):
        raise UsageError(f"{where}.from_env: {name!r} is not an environment variable name")
    if kind == FROM_FILE and not (isinstance(name, str) and name.startswith(("/", "~/"))):
        raise UsageError(f"{where}.from_file: {name!r} is not an absolute path")
    return SecretRef(str(kind), str(name))


def names_secret(key: str) -> bool:
    """Whether a variable named ``key`` holds a secret (``DB_PASSWORD``, ``api_token``),
    not where one is (``ANSIBLE_VAULT_PASSWORD_FILE``)."""
    words = WORD.findall(key)
    return is_secret(key) and not (words and words[-1].lower() in WHERE_WORDS)


def check_secrets(where: str, key: str, value: Any) -> Any:
    """``value`` (the value of ``key``) with its secret references parsed; a plain value
    under a name that looks like a secret is refused, at any depth of mappings and lists."""
    ref = reference(where, value)
    if ref is not None:
        return ref
    if isinstance(value, Mapping):
        return {k: check_secrets(f"{where}.{k}", str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [check_secrets(f"{where}[{i}]", key, v) for i, v in enumerate(value)]
    if names_secret(key) and isinstance(value, str | int | float) and not isinstance(value, bool):
        raise UsageError(
            f"{where}: looks like a secret, and a specification keeps no secret: write "
            "{from_env: NAME} (read from Ephyra's environment when the step runs) or "
            "{from_file: PATH} (read from a file then)"
        )
    return value


def checked_variables(where: str, variables: Mapping[Any, Any]) -> dict[str, Any]:
    """A mapping of variable names to values, each checked by :func:`check_secrets`."""
    return {str(k): check_secrets(f"{where}.{k}", str(k), v) for k, v in variables.items()}


def check_strategy_secrets(where: str, options: Mapping[str, Any]) -> None:
    """Refuse a strategy's options that write a secret where a reference belongs."""
    for key in SECRET_OPTIONS:
        if isinstance(options.get(key), Mapping):
            checked_variables(f"{where}.{key}", options[key])


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
        """A mapping of environment variable names to values: templates, or secret
        references (:class:`SecretRef`) that :func:`rendered` reads when the step runs."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self._bad(key, "must be a mapping of variable names to values")
        env: dict[str, str] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise UsageError(f"{key}: {name!r} is not an environment variable name")
            found = check_secrets(f"{key}.{name}", name, item)
            if isinstance(found, SecretRef):
                env[name] = found
                continue
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
    """Every value of ``env`` rendered for ``target``; a secret reference read now (its
    secret is not a template)."""
    return {
        name: value.resolve(name) if isinstance(value, SecretRef) else render(value, target)
        for name, value in env.items()
    }


def rendered_vars(values: Mapping[str, Any], target: Target) -> dict[str, Any]:
    """Variables (ansible's ``extravars``) for ``target``: strings at the top rendered as
    templates, secret references at any depth read now."""
    return {
        key: render(value, target)
        if isinstance(value, str) and not isinstance(value, SecretRef)
        else _resolved(key, value)
        for key, value in values.items()
    }


def _resolved(where: str, value: Any) -> Any:
    if isinstance(value, SecretRef):
        return value.resolve(where)
    if isinstance(value, Mapping):
        return {k: _resolved(f"{where}.{k}", v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(f"{where}[{i}]", v) for i, v in enumerate(value)]
    return value
