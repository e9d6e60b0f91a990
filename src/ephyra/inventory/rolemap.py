"""Operator role mappings: a YAML file of name patterns and the roles they give.

::

    # group, Puppet class... pattern (shell-style, any case) -> role, roles, or null (none)
    Profile::Nova::Compute: compute
    "Role::Openstack::*": controller
    gpu_hosts: [compute, gpu]
    monitoring: null

The first pattern (in file order) that matches a name decides; a name no pattern
matches is left to the source's own rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

import yaml

from ephyra import yamlfile
from ephyra.errors import UsageError


@dataclass(frozen=True)
class RoleMap:
    rules: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def roles(self, name: str) -> tuple[str, ...] | None:
        """The roles of ``name``; None when no pattern matches it."""
        lowered = name.lower()
        for pattern, roles in self.rules:
            if fnmatchcase(lowered, pattern):
                return roles
        return None

    @classmethod
    def from_mapping(cls, data: Mapping[object, object], where: str) -> RoleMap:
        rules = []
        for pattern, value in data.items():
            if not isinstance(pattern, str) or not pattern:
                raise UsageError(f"{where}: {pattern!r}: a pattern must be a string")
            if value is None:
                roles: tuple[str, ...] = ()
            elif isinstance(value, str) and value:
                roles = (value,)
            elif isinstance(value, list) and all(isinstance(v, str) and v for v in value):
                roles = tuple(value)
            else:
                raise UsageError(
                    f"{where}: {pattern}: expected a role, a list of roles or null, got {value!r}"
                )
            rules.append((pattern.lower(), roles))
        return cls(tuple(rules))

    @classmethod
    def load(cls, path: str) -> RoleMap:
        """The mapping in the YAML file ``path``; a UsageError naming the file otherwise."""
        try:
            data = yamlfile.read(path)
        except OSError as exc:
            raise UsageError(f"role mapping {path}: cannot read it: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise UsageError(f"role mapping {path}: not YAML: {exc}") from exc
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise UsageError(f"role mapping {path}: expected a mapping of pattern: role(s)")
        return cls.from_mapping(data, f"role mapping {path}")
