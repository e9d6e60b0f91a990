"""The host agent: follows the desired version on one host (seed 003)."""
