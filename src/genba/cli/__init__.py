"""The ``genba`` command line."""

from genba.cli._main import cli, main

__all__ = ["cli", "main"]
