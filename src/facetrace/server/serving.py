"""How the app is served: the uvicorn settings every server of Facetrace runs with."""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI


def uvicorn_config(app: FastAPI, **options: Any) -> uvicorn.Config:
    """Uvicorn's configuration for ``app``, with its proxy-header handling off.

    Uvicorn would otherwise replace the peer's address with ``X-Forwarded-For`` for any
    connection from 127.0.0.1: :mod:`facetrace.server.common.client_address` decides alone, from
    FACETRACE_TRUSTED_PROXIES, whose header is believed.
    """
    return uvicorn.Config(app, proxy_headers=False, **options)
