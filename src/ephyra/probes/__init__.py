"""What users see during a run: targets probed by plugin (``ephyra.probes`` entry points),
and the report of each target's downtime against the run's units (:mod:`.report`)."""
