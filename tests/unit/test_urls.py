"""URLs lose their credentials before any message shows them."""

from __future__ import annotations

import pytest

from ephyra.urls import redact, redact_text


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
