"""Notifiers: who is told of a run's start, end, state changes, step errors and notices
(plugins of the entry-point group ``ephyra.notifiers``), and the operator's configuration
that names them. The engine delivers to them from the journal (:mod:`ephyra.engine.notify`)."""
