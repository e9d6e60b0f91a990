"""Who is calling: a token, checked against a file of static tokens (the embedded
default) or against Keystone.

Static tokens live in a YAML file, one entry per token::

    s3cr3t-token: {user: alice, project: ops, roles: [admin]}

Keystone tokens are validated with the server's own credentials (a cloud of
clouds.yaml) by ``GET /v3/auth/tokens``, as keystonemiddleware does; a valid answer is
kept for ``cache_seconds`` (never past the token's expiry), so a revoked token or a
changed role is seen within that time.

Only tokens of the scopes the operator names (:class:`KeystoneScope`: projects, domains,
the system) carry Ephyra roles, taken from the token's Keystone roles through a mapping
(by default ``admin``, ``member`` and ``reader`` stand for themselves). A valid token of
any other scope, or an unscoped one, is authenticated but has no role: it may only ask
who it is. The decision is made before a token is cached.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

from ephyra import yamlfile
from ephyra.api.policy import Identity
from ephyra.errors import CloudError, NotAuthenticated, UsageError

CACHE_SIZE = 10_000
#: Ephyra's roles; by default each is given by the Keystone role of the same name.
ROLES = ("admin", "member", "reader")
#: The name of Keystone's default domain, where a project named without a domain lives.
DEFAULT_DOMAIN = ("default", "Default")


class Authenticator(Protocol):
    def identify(self, token: str) -> Identity: ...


class StaticTokens:
    @classmethod
    def empty(cls) -> StaticTokens:
        made = cls.__new__(cls)
        made._tokens = []
        return made

    def __init__(self, path: Path) -> None:
        try:
            raw = yamlfile.read(path) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UsageError(f"cannot read the tokens file {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise UsageError(f"{path}: a mapping of token -> {{user, project, roles}}")
        self._tokens: list[tuple[bytes, Identity]] = []
        for token, entry in raw.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("roles"), list):
                raise UsageError(f"{path}: each token wants {{user, project, roles: [...]}}")
            if len(str(token)) < 16:
                raise UsageError(f"{path}: a token of {entry.get('user')} is too short (< 16)")
            who = Identity(
                str(entry.get("user", "")),
                str(entry.get("project", "")),
                tuple(str(r) for r in entry["roles"]),
            )
            self._tokens.append((str(token).encode(), who))

    def identify(self, token: str) -> Identity:
        given = token.encode()
        found = None
        for known, who in self._tokens:  # compare with every one: no timing hint
            if hmac.compare_digest(known, given):
                found = who
        if found is None:
            raise NotAuthenticated("the token is not known to this server")
        return found


def make_tokens_file(path: Path) -> str:
    """A new tokens file with one admin token (readable by its owner only); the token."""
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(
        yaml.safe_dump({token: {"user": "admin", "project": "admin", "roles": ["admin"]}})
    )
    return token


def admin_token(path: Path) -> str | None:
    """The first admin token of a tokens file, if the file is there and readable."""
    try:
        raw = yamlfile.read(path) or {}
    except (OSError, yaml.YAMLError):
        return None
    for token, entry in raw.items():
        if isinstance(entry, dict) and "admin" in (entry.get("roles") or []):
            return str(token)
    return None


def default_roles() -> dict[str, tuple[str, ...]]:
    return {role: (role,) for role in ROLES}


@dataclass(frozen=True)
class KeystoneScope:
    """Which Keystone tokens carry Ephyra roles, and which Keystone roles give which.

    ``projects``: project ids, ``DOMAIN/NAME`` (domain by name or id), or a name in the
    Default domain; ``domains``: domain-scoped tokens of these (name or id); ``system``:
    system-scoped tokens (``system: {all: true}``); ``roles``: Ephyra role -> the
    Keystone roles that give it.
    """

    projects: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    system: bool = False
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=default_roles)

    def __post_init__(self) -> None:
        if not (self.projects or self.domains or self.system):
            raise UsageError(
                "name the project(s) whose members may use Ephyra (--keystone-project, "
                "--keystone-domain or --keystone-system)"
            )
        for name in (*self.projects, *self.domains):
            if not name.strip() or name.startswith("/") or name.endswith("/"):
                raise UsageError(f"a Keystone project or domain {name!r} refused: empty part")

    def covers(self, body: Mapping[str, Any]) -> bool:
        """Whether a token (the ``token`` of Keystone's answer) is of a scope named."""
        project = body.get("project")
        if isinstance(project, Mapping):
            return any(_project_is(spec, project) for spec in self.projects)
        domain = body.get("domain")
        if isinstance(domain, Mapping):
            return any(spec in (domain.get("id"), domain.get("name")) for spec in self.domains)
        system = body.get("system")
        return self.system and isinstance(system, Mapping) and system.get("all") is True

    def ephyra_roles(self, keystone_roles: Iterable[str]) -> tuple[str, ...]:
        held = set(keystone_roles)
        return tuple(role for role in ROLES if held.intersection(self.roles.get(role, ())))


def parse_roles(text: str) -> dict[str, tuple[str, ...]]:
    """``admin=ROLE,member=ROLE,reader=ROLE`` (a role may be named more than once, each
    Ephyra role not named keeps the Keystone role of its own name)."""
    given: dict[str, list[str]] = {}
    for part in text.split(","):
        ephyra, sep, keystone = (p.strip() for p in part.partition("="))
        if not sep or ephyra not in ROLES or not keystone:
            raise UsageError(
                f"--keystone-roles {part.strip()!r} refused: ROLE=KEYSTONE_ROLE, where ROLE "
                f"is one of {', '.join(ROLES)}"
            )
        given.setdefault(ephyra, []).append(keystone)
    return {role: tuple(given.get(role, [role])) for role in ROLES}


def _project_is(spec: str, project: Mapping[str, Any]) -> bool:
    domain = project.get("domain") or {}
    if "/" in spec:
        domain_name, _, name = spec.rpartition("/")
        in_domain = domain_name in (domain.get("id"), domain.get("name"))
        return in_domain and project.get("name") == name
    if spec == project.get("id"):
        return True
    return spec == project.get("name") and domain.get("id") == DEFAULT_DOMAIN[0]


class KeystoneTokens:
    def __init__(self, cloud: str, scope: KeystoneScope, cache_seconds: float = 60.0) -> None:
        from ephyra.clouds import connect

        self._session = connect(cloud).session
        self._cloud = cloud
        self.scope = scope
        self.cache_seconds = cache_seconds
        self._cache: OrderedDict[bytes, tuple[Identity, float]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, token: str) -> Identity | None:
        key = hashlib.sha256(token.encode()).digest()
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                return None
            if hit[1] <= time.time():
                del self._cache[key]
                return None
            return hit[0]

    def identify(self, token: str) -> Identity:
        hit = self.cached(token)
        if hit is not None:
            return hit
        try:
            answer = self._session.get(
                "/auth/tokens",
                endpoint_filter={"service_type": "identity", "interface": "public"},
                headers={"X-Subject-Token": token},
                raise_exc=False,
            )
        except Exception as exc:  # keystoneauth's connection errors
            raise CloudError(
                f"{self._cloud}: cannot reach Keystone to check a token: {exc}"
            ) from exc
        if answer.status_code in (401, 404):
            raise NotAuthenticated("the token is expired, revoked or unknown to Keystone")
        if answer.status_code != 200:
            raise CloudError(
                f"{self._cloud}: Keystone answered {answer.status_code} to a token check"
            )
        who, expires = identity_of(answer.json()["token"], self.scope)
        until = min(time.time() + self.cache_seconds, expires)
        if until > time.time():
            key = hashlib.sha256(token.encode()).digest()
            with self._lock:
                self._cache[key] = (who, until)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return who


def identity_of(body: Mapping[str, Any], scope: KeystoneScope) -> tuple[Identity, float]:
    """Who a validated token is, with Ephyra roles only if its scope is one named; and
    when it expires."""
    project = body.get("project") or {}
    domain = project.get("domain") or body.get("domain") or {}
    keystone_roles = [str(r.get("name", "")) for r in body.get("roles") or []]
    who = Identity(
        str((body.get("user") or {}).get("name", "")),
        str(project.get("name") or project.get("id") or ""),
        scope.ephyra_roles(keystone_roles) if scope.covers(body) else (),
        project_id=str(project.get("id") or ""),
        domain=str(domain.get("name") or domain.get("id") or ""),
    )
    expires = datetime.fromisoformat(str(body["expires_at"]).replace("Z", "+00:00")).timestamp()
    return who, expires
