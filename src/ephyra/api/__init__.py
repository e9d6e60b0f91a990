"""The management panel: the HTTP API of ``ephyra serve``, its authentication and
policy, and the operations the command line shares with it."""
