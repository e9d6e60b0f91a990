"""URLs lose their credentials before any message shows them."""

from __future__ import annotations

import pytest

from ephyra.urls import is_http, redact, redact_text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ephyra:s3cret@db:5432/ephyra", "postgresql://ephyra:***@db:5432/ephyra"),
        ("etcd3+https://root:pw@10.0.0.5:2379", "etcd3+https://root:***@10.0.0.5:2379"),
        ("etcd3+http://10.0.0.5:2379?ttl=5", "etcd3+http://10.0.0.5:2379?ttl=5"),
        (
            "etcd3+https://h:2379?password=x&ca_cert=/a",
            "etcd3+https://h:2379?password=***&ca_cert=/a",
        ),
        ("sqlite:////var/lib/ephyra/journal.db", "sqlite:////var/lib/ephyra/journal.db"),
    ],
)
def test_redact_hides_credentials(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_redact_text_hides_urls_inside_messages() -> None:
    text = "cannot connect to postgresql://u:pw@db/x: refused"
    assert redact_text(text) == "cannot connect to postgresql://u:***@db/x: refused"


@pytest.mark.parametrize(
    ("url", "http"),
    [
        ("http://am:9093", True),
        ("https://user:pw@puppetdb.example.com:8081/pdb", True),
        ("http://[::1]:8080/", True),
        ("http://", False),  # no host
        ("https://:8081", False),
        ("ftp://am:9093", False),
        ("am:9093", False),
        ("http://am :9093", False),  # white space
        ("http://am:port", False),  # a bad port
        ("http://[::1", False),  # an unclosed bracket
        ("", False),
    ],
)
def test_is_http_wants_a_scheme_a_host_and_no_white_space(url: str, http: bool) -> None:
    assert is_http(url) is http


def test_a_refused_url_is_shown_without_its_password() -> None:
    from ephyra.errors import UsageError
    from ephyra.upgrade.alarms import Alarms

    with pytest.raises(UsageError) as refused:
        Alarms(url="ftp://admin:s3cret@am:9093")
    assert "s3cret" not in str(refused.value) and "admin:***@am" in str(refused.value)
