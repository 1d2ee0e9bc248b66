"""Liveness and metrics, for load balancers and Prometheus (no token needed)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from facetrace.server.state import ServerState, server_state

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok"]


@router.get("/health", response_model=Health, responses={503: {"description": "The catalog is unreachable"}})
def health(state: Annotated[ServerState, Depends(server_state)]) -> Health:
    """200 while the catalog answers."""
    try:
        with state.sessions() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise HTTPException(503, f"the catalog does not answer ({exc.__class__.__name__})") from exc
    return Health(status="ok")


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus text format: requests by route and status, latencies, what the gallery holds."""
    return request.app.state.metrics.response()
