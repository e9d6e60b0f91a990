"""Upgrade strategies, plugins of ``ephyra.strategies``: how a host or service is upgraded."""
