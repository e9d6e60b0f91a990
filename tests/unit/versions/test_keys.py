"""Seed 003's key layout."""

from __future__ import annotations

from ephyra.versions.keys import Keys


def test_keys_stand_where_seed_003_puts_them_and_under_a_prefix() -> None:
    keys = Keys()
    assert keys.current_version == "/current_version"
    assert keys.running("2.0", "h1") == "/running_version/2.0/h1"
    assert keys.status("validated/failure", "2.0", "h1") == "/status/validated/failure/2.0/h1"
    assert keys.roles("2.0", "db", "h1") + "address" == "/active_roles/2.0/db/h1/address"
    assert Keys("/cloud-a/").running("2.0") == "/cloud-a/running_version/2.0/"
