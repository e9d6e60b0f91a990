"""The routes of the HTTP API, one router per capability: the server itself, the runs of
every kind (and one router per registered kind for its plan and start), hosts, the
inventory, versions, environments and the dashboard. :func:`ephyra.api.app.create_app`
puts them together."""
