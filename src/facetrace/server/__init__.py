"""The HTTP API: a FastAPI app over the same governance service the CLI calls."""

from facetrace.server.app import create_app

__all__ = ["create_app"]
