"""The administrator's page: users with their roles and units, API tokens, the registered sources
with their legal basis, jurisdiction and retention, and crawls running in the background."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Path, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from facetrace.collect.sources import KINDS, SourceSpec
from facetrace.governance.accounts import SERVICE_ROLES, STAFF_ROLES
from facetrace.server.common.orders import NewJob, NewSource, NewToken, submit
from facetrace.server.common.params import MAX_ID
from facetrace.server.common.state import ServerState, server_state
from facetrace.server.web.errors import page_router
from facetrace.server.web.rendering import back_to, page, reported
from facetrace.server.web.session import CheckedForm, SignedIn, field, flash

router = page_router()
#: The newest jobs the page shows (the API pages through all of them).
JOBS_SHOWN = 50
State = Annotated[ServerState, Depends(server_state)]
IdInPath = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/admin", response_class=HTMLResponse)
def administration(request: Request, gov: SignedIn, state: State) -> HTMLResponse:
    gov.jobs.oversee()
    return page(
        request,
        "admin.html",
        gov,
        users=gov.accounts.users(),
        units=gov.accounts.units(),
        sources=gov.sources.listing(),
        jobs=[asdict(job) for job in gov.jobs.listing(limit=JOBS_SHOWN)],
        roles=[role.value for role in STAFF_ROLES],
        kinds=KINDS,
        import_dir=state.settings.import_dir,
        policy=gov.policy.show().model_dump(mode="json"),
    )


@router.post("/admin/policy")
def change_policy(request: Request, gov: SignedIn, form: CheckedForm) -> RedirectResponse:
    """One setting of the deployment's policy, as typed (a list: comma-separated; 'none': no limit)."""
    name = field(form, "name")
    with reported(request):
        old, new = gov.policy.change(name, field(form, "value"))
        flash(request, f"Policy {name}: {old} → {new}.")
    return back_to("/admin#policy-title")


@router.post("/admin/units")
def add_unit(request: Request, gov: SignedIn, form: CheckedForm) -> RedirectResponse:
    with reported(request):
        flash(request, f"Unit {gov.accounts.add_unit(field(form, 'name'))} created.")
    return back_to("/admin#users-title")


@router.post("/admin/users")
def add_user(request: Request, gov: SignedIn, form: CheckedForm) -> RedirectResponse:
    name = field(form, "name")
    service = field(form, "service") == "yes"
    with reported(request, done=f"{'Service account' if service else 'User'} {name} created."):
        password = None if service else field(form, "password") or None
        roles = form.fields.get("roles", [])
        gov.accounts.add_user(name, roles, field(form, "unit") or None, password, service=service)
    return back_to("/admin")


@router.get("/admin/users/{name}", response_class=HTMLResponse)
def user_page(request: Request, name: str, gov: SignedIn) -> HTMLResponse:
    """One account: its roles and unit, disabling, a password reset, and every token it holds."""
    user = gov.accounts.user(name)
    return page(
        request,
        "admin_user.html",
        gov,
        user=user,
        tokens=gov.accounts.tokens(name),
        units=gov.accounts.units(),
        roles=sorted(SERVICE_ROLES) if user.service else [role.value for role in STAFF_ROLES],
    )


@router.post("/admin/users/{name}")
def change_user(request: Request, name: str, gov: SignedIn, form: CheckedForm) -> RedirectResponse:
    with reported(request, done=f"User {name}: roles and unit saved."):
        gov.accounts.set_roles(name, form.fields.get("roles", []))
        gov.accounts.set_unit(name, field(form, "unit") or None)
    return back_to(f"/admin/users/{quote(name)}")


@router.post("/admin/users/{name}/{change}")
def user_life_cycle(
    request: Request, name: str, change: str, gov: SignedIn, _form: CheckedForm
) -> RedirectResponse:
    """Disable, enable, or reset the password of a user."""
    with reported(request):
        if change in ("disable", "enable"):
            gov.accounts.set_disabled(name, disabled=change == "disable")
            flash(request, f"User {name} {change}d.")
        elif change == "password-reset":
            temporary = gov.accounts.reset_password(name)
            flash(
                request,
                f"Temporary password for {name} (shown once; it opens only its own change): {temporary}",
            )
        else:
            flash(request, f"unknown change {change!r}", "error")
    return back_to(f"/admin/users/{quote(name)}")


@router.post("/admin/users/{name}/tokens/new")
def issue_token(request: Request, name: str, gov: SignedIn, form: CheckedForm) -> RedirectResponse:
    """A token for a service account (nobody is given a token for another person)."""
    with reported(request):
        issued = gov.accounts.issue_token(
            name, form.value("label", NewToken, "name"), form.value("days", NewToken)
        )
        flash(request, f"Token for {name} (shown once, copy it now): {issued.token}")
    return back_to(f"/admin/users/{quote(name)}")


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: IdInPath, gov: SignedIn, form: CheckedForm) -> RedirectResponse:
    with reported(request, done=f"Token {token_id} revoked."):
        gov.accounts.revoke_token(token_id)
    return back_to(f"/admin/users/{quote(field(form, 'user'))}")


@router.post("/admin/sources")
def add_source(request: Request, gov: SignedIn, form: CheckedForm) -> RedirectResponse:
    spec = SourceSpec(
        name=field(form, "name"),
        kind=field(form, "kind"),
        legal_basis=field(form, "legal_basis"),
        jurisdiction=field(form, "jurisdiction").upper(),
        purpose=field(form, "purpose") or None,
        seeds=tuple(field(form, "seeds").split()),
        allowed=tuple(field(form, "allowed").split()),
        allow_private_network=field(form, "allow_private_network") == "on",
        retention_days=form.value("retention_days", NewSource),
    )
    with reported(request, done=f"Source {spec.name} registered."):
        gov.sources.add(spec)
    return back_to("/admin")


@router.post("/admin/sources/{name}/{change}")
def pause_or_resume(
    request: Request, name: str, change: str, gov: SignedIn, _form: CheckedForm
) -> RedirectResponse:
    with reported(request, done=f"Source {name}: {change}d."):
        gov.sources.pause(name, paused=change == "pause")
    return back_to("/admin")


@router.post("/admin/jobs")
def start_job(request: Request, gov: SignedIn, state: State, form: CheckedForm) -> RedirectResponse:
    """Start a crawl, or an import of a folder inside the import folder, in the background (the
    API's job runner): progress shows below."""
    if field(form, "kind") == "import":
        order = NewJob(kind="import", source=field(form, "source"), folder=field(form, "folder") or ".")
        started = f"Import of {order.folder} into {order.source}"
    else:
        order = NewJob(source=field(form, "source"))
        started = f"Crawl of {order.source}"
    with reported(request):
        job = submit(gov, state, order)
        flash(request, f"{started} started (job {job.id}).")
    return back_to("/admin#jobs-title")


@router.post("/admin/jobs/{job_id}/cancel")
def cancel_crawl(
    request: Request, job_id: IdInPath, gov: SignedIn, state: State, _form: CheckedForm
) -> RedirectResponse:
    with reported(request, done=f"Job {job_id} asked to stop: it resumes from there next time."):
        gov.jobs.cancel(job_id)
        state.jobs.stop(job_id)
    return back_to("/admin#jobs-title")


@router.get("/admin/jobs.json")
def jobs_progress(gov: SignedIn) -> JSONResponse:
    """The jobs and their progress, for the page to refresh itself while one runs."""
    return JSONResponse(jsonable_encoder([asdict(job) for job in gov.jobs.listing(limit=JOBS_SHOWN)]))
