"""Static tokens."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from ephyra.api.auth import StaticTokens, admin_token, make_tokens_file
from ephyra.errors import NotAuthenticated, UsageError


def test_a_new_tokens_file_holds_one_admin_token_for_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "state" / "api-tokens.yaml"
    token = make_tokens_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert admin_token(path) == token and len(token) >= 32
    who = StaticTokens(path).identify(token)
    assert (who.user, who.roles) == ("admin", ("admin",))
    with pytest.raises(NotAuthenticated):
        StaticTokens(path).identify(token[:-1])


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("- a list", "a mapping of token"),
        ("short: {user: a, project: p, roles: [admin]}", "too short"),
        ("a-long-enough-token: {user: a}", "roles"),
        ("{unclosed", "cannot read"),
    ],
)
def test_a_bad_tokens_file_is_refused(tmp_path: Path, content: str, said: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(content)
    with pytest.raises(UsageError, match=said):
        StaticTokens(path)


def test_tokens_map_to_their_roles(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "reader-token-0123456789": {"user": "r", "project": "p", "roles": ["reader"]},
                "member-token-0123456789": {"user": "m", "project": "p", "roles": ["member"]},
            }
        )
    )
    tokens = StaticTokens(path)
    assert tokens.identify("member-token-0123456789").roles == ("member",)
    assert tokens.identify("reader-token-0123456789").user == "r"
    assert admin_token(path) is None
