"""Versions, host lifecycle and roles as keys (seed 003), on etcd or SQLite."""
