"""``facetrace serve``: the HTTP API (OpenAPI at /docs) over the same service the CLI calls."""

from __future__ import annotations

from typing import Annotated

import typer

from facetrace.cli.state import settings_of


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Run the REST API. On first start, creates the 'admin' account (password from
    FACETRACE_ADMIN_PASSWORD, or generated and printed once)."""
    import uvicorn

    from facetrace.cli.render import console
    from facetrace.server.app import create_app
    from facetrace.server.serving import uvicorn_config

    def announce(name: str, generated_password: str | None) -> None:
        if generated_password is None:
            console.print(f"Created the first admin account {name!r} (password: FACETRACE_ADMIN_PASSWORD).")
            return
        console.print(
            f"Created the first admin account {name!r} with the password below. It is shown only now: "
            f"log in at http://{host}:{port}/login (or POST /api/v1/auth/token) and add the other users.",
            highlight=False,
        )
        print(f"password: {generated_password}", flush=True)

    app = create_app(settings_of(ctx), on_first_admin=announce)
    uvicorn.Server(uvicorn_config(app, host=host, port=port)).run()
