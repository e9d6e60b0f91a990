"""Ephyra: upgrade OpenStack clouds with as little downtime and risk as possible."""

__version__ = "0.1.0"
