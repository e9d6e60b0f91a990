"""Service and host upgrades (seed 001): a specification, a plan of batches, and a run."""
