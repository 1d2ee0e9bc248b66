"""The ``facetrace`` command line."""

from facetrace.cli.app import app, run

__all__ = ["app", "run"]
