"""Run kinds used only by the tests, registered by an entry point the tests write."""
