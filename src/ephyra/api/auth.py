"""Who is calling: a token, checked against a file of static tokens (the embedded
default) or against Keystone.

Static tokens live in a YAML file, one entry per token::

    s3cr3t-token: {user: alice, project: ops, roles: [admin]}

Keystone tokens are validated with the server's own credentials (a cloud of
clouds.yaml) by ``GET /v3/auth/tokens``, as keystonemiddleware does; a valid answer is
kept for ``cache_seconds`` (never past the token's expiry), so a revoked token or a
changed role is seen within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

from ephyra.api.policy import Identity
from ephyra.errors import CloudError, NotAuthenticated, UsageError

CACHE_SIZE = 10_000


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
            raw = yaml.safe_load(path.read_text()) or {}
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
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    for token, entry in raw.items():
        if isinstance(entry, dict) and "admin" in (entry.get("roles") or []):
            return str(token)
    return None


class KeystoneTokens:
    def __init__(self, cloud: str, cache_seconds: float = 60.0) -> None:
        from ephyra.clouds import connect

        self._session = connect(cloud).session
        self._cloud = cloud
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
        who, expires = _identity(answer.json()["token"])
        until = min(time.time() + self.cache_seconds, expires)
        if until > time.time():
            key = hashlib.sha256(token.encode()).digest()
            with self._lock:
                self._cache[key] = (who, until)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return who


def _identity(body: dict[str, Any]) -> tuple[Identity, float]:
    project = body.get("project") or {}
    who = Identity(
        str((body.get("user") or {}).get("name", "")),
        str(project.get("name") or project.get("id") or ""),
        tuple(str(r["name"]) for r in body.get("roles") or []),
    )
    expires = datetime.fromisoformat(str(body["expires_at"]).replace("Z", "+00:00")).timestamp()
    return who, expires
