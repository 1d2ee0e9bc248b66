"""A file handed to one person: an attachment no cache or shared proxy keeps (access reports)."""

from __future__ import annotations

from fastapi import Response


def private_attachment(content: bytes, filename: str, media_type: str = "application/json") -> Response:
    """``content`` as a download named ``filename``, never stored by a browser cache or a proxy."""
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
