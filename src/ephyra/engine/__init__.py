"""The engine every run kind shares: run states, the journal, locks."""
