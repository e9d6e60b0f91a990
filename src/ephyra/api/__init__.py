"""The management panel: the HTTP API of ``ephyra serve`` (one router per capability,
under :mod:`ephyra.api.routes`), its authentication and policy. The operations it serves
are :mod:`ephyra.operations`, the same the command line calls."""
