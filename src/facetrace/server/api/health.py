"""Liveness, for load balancers (no token needed), and metrics, for Prometheus (a token whose user may
read them: an admin or an auditor; each read is audited)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from facetrace.server.common.auth import Acting
from facetrace.server.common.problems import PROBLEM_RESPONSES
from facetrace.server.common.state import ServerState, server_state

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


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **PROBLEM_RESPONSES},
)
def metrics(request: Request, gov: Acting) -> Response:
    """Prometheus text format: requests by route and status, latencies, what the gallery holds
    (admin, auditor: Prometheus sends the token with ``authorization: {credentials: ftk_…}``)."""
    gov.gallery.read_metrics()
    response: Response = request.app.state.metrics.response()
    return response
