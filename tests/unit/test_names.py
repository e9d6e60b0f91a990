"""Host names, cloud names and versions are held to strict patterns."""

from __future__ import annotations

import pytest

from ephyra.errors import UsageError
from ephyra.names import check_name, check_version, is_name, is_version


@pytest.mark.parametrize(
    "good", ["compute-7", "ctl-1.example.org", "fe80::1", "host@lvm", "10.0.0.5", "cp1"]
)
def test_good_names_pass(good: str) -> None:
    assert check_name(good) == good


@pytest.mark.parametrize(
    "bad",
    ["", "-rf", "a b", "a;b", "a/b", "../etc", "$(id)", "a`id`", "a\nb", "a'b", "x" * 256, "é"],
)
def test_bad_names_are_refused(bad: str) -> None:
    assert not is_name(bad)
    with pytest.raises(UsageError, match="host name"):
        check_name(bad)


@pytest.mark.parametrize("good", ["2025.2", "2:29.0.0-0ubuntu1~cloud0", "30.1.0rc1", "v1+local"])
def test_good_versions_pass(good: str) -> None:
    assert check_version(good) == good


@pytest.mark.parametrize(
    "bad", ["2025.2;touch pwned;echo", "1/2", "../../x", "", " 1", "1 2", "$V", "9" * 129]
)
def test_bad_versions_are_refused(bad: str) -> None:
    assert not is_version(bad)
    with pytest.raises(UsageError, match="desired version"):
        check_version(bad, "desired version")


def test_a_refused_value_is_shown_short() -> None:
    with pytest.raises(UsageError) as caught:
        check_version("1;" + "x" * 10_000)
    assert len(str(caught.value)) < 200
