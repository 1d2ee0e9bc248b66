"""Who is asking: the client's address, for rate limits and the audit log.

The direct peer is the client, unless it is one of FACETRACE_TRUSTED_PROXIES (none by default):
then ``X-Forwarded-For`` is read from the right, and the first address that is not a trusted
proxy is the client. A header sent by anyone else is ignored, so a client cannot choose its own
address. Uvicorn's own rewriting of the peer from that header is turned off
(:func:`facetrace.server.serving.uvicorn_config`): this is the one place that reads it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from fastapi import Request

from facetrace.server.common.state import server_state

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"


def client_address(request: Request) -> str:
    """The address of the client that sent ``request``, per the server's trusted proxies."""
    peer = request.client.host if request.client else None
    return address_behind(
        peer, request.headers.getlist("x-forwarded-for"), server_state(request).settings.trusted_proxies
    )


def address_behind(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address, given the direct ``peer`` and the ``X-Forwarded-For`` headers it sent."""
    if peer is None:
        return UNKNOWN
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    client = peer
    for hop in reversed(hops):  # each trusted proxy appended the address it was sent from
        if not _is_trusted(client, trusted) or _parse(hop) is None:
            break  # left of an untrusted or malformed entry, anything may be forged
        client = hop
    return client


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    parsed = _parse(address)
    return parsed is not None and any(parsed in network for network in trusted)
