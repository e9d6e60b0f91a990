"""An environment's settings duplicated from one cloud to another: exported as a document,
planned as a diff, applied as a run (and rolled back)."""
