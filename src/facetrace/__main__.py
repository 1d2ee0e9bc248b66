"""``python -m facetrace`` is the same as the ``facetrace`` command."""

from facetrace.cli import run

run()
