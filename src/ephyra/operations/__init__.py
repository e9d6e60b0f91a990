"""What the command line and the API share: every operation behind one typed interface
(:class:`ephyra.operations.protocol.Operations`), done in this process
(:class:`ephyra.operations.local.Local`) or by a running ``ephyra serve``
(:class:`ephyra.operations.remote.Remote`), with the same answers either way."""
