"""The source registry (``facetrace source``): add, list, show, pause, resume, remove."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from facetrace.collect.sources import SourceSpec
from facetrace.governance.services.sources import Source
from facetrace.server.common.auth import Acting
from facetrace.server.common.orders import NewSource
from facetrace.server.common.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1/sources", tags=["sources"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Source)
def add_source(gov: Acting, body: NewSource) -> Source:
    """Register a source (admin). Social networks are refused; there is no crawl-the-web mode."""
    spec = SourceSpec(
        **body.model_dump(exclude={"seeds", "allowed"}), seeds=tuple(body.seeds), allowed=tuple(body.allowed)
    )
    return gov.sources.add(spec)


@router.get("", response_model=list[Source])
def list_sources(gov: Acting) -> list[Source]:
    """Every registered source with its status."""
    return gov.sources.listing()


@router.get("/{name}", response_model=Source)
def show_source(gov: Acting, name: str) -> Source:
    """Everything registered about one source."""
    return gov.sources.get(name)


@router.post("/{name}/pause", status_code=status.HTTP_204_NO_CONTENT)
def pause_source(gov: Acting, name: str) -> Response:
    """Stop collecting from a source until it is resumed (admin)."""
    gov.sources.pause(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/resume", status_code=status.HTTP_204_NO_CONTENT)
def resume_source(gov: Acting, name: str) -> Response:
    """Collect from a paused source again (admin)."""
    gov.sources.pause(name, paused=False)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class PrivateNetwork(BaseModel):
    allow_private_network: bool = Field(description="Its crawls may reach private addresses.")


@router.put("/{name}/private-network", status_code=status.HTTP_204_NO_CONTENT)
def set_private_network(gov: Acting, name: str, body: PrivateNetwork) -> Response:
    """Let a source's crawls reach loopback, private and link-local addresses, or not (admin)."""
    gov.sources.set_private_network(name, allowed=body.allow_private_network)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def remove_source(gov: Acting, name: str) -> Response:
    """Unregister a source that holds nothing; a DPO erases what it holds first (admin)."""
    gov.sources.remove(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
