"""Nobody acts as someone else, and guessing passwords does not work: each attack tried over real HTTP
on a served app, on SQLite and on PostgreSQL (``gov_settings``).

An admin cannot mint a token for the bootstrap operator or for a person; the bootstrap operator has no
web login nor token, even where an older version left it a password; the web cookie holds a session id
that dies at logout and when its user is disabled; weak passwords are refused; failed logins are
audited and throttled; the login endpoint reads small url-encoded forms only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
from alembic import command
from sqlalchemy import select, text

from facetrace.core.config import Settings
from facetrace.core.errors import AuthenticationError, BusyError, LoginThrottledError
from facetrace.governance import accounts, login_throttle, passwords
from facetrace.governance.service import Governance
from facetrace.store.engine import alembic_config, create_catalog_engine, open_catalog
from facetrace.store.governance_models import ApiToken, AuditEntry, User, UserRole, WebSession
from support.api import ADMIN_PASSWORD, USER_PASSWORD, Api, assert_problem, serving_api
from support.form_client import COOKIE, Browser

FORBIDDEN = "/problems/permission-denied"
REFUSED = "/problems/refused"


@pytest.fixture
def api(gov_settings: Settings) -> Iterator[Api]:
    settings = Settings(
        data_dir=gov_settings.data_dir, database_url=gov_settings.database_url, admin_password=ADMIN_PASSWORD
    )
    with serving_api(settings) as served:
        yield served


def audit_entries(settings: Settings, action: str) -> list[AuditEntry]:
    with open_catalog(settings.catalog_url)() as session:
        return list(
            session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        )


# --- nobody acts as someone else -----------------------------------------------------------------------


def test_an_admin_cannot_mint_a_token_for_the_operator_or_a_person(api: Api) -> None:
    admin = api.admin
    victim = api.new_user("investigator")[0]
    for target, why in [("operator", "command-line identity"), (victim, "another person")]:
        refused = admin.post(f"/api/v1/users/{target}/tokens", json={"name": "x", "days": 3650})
        assert why in assert_problem(refused, 403, FORBIDDEN)["detail"]
        assert "token" not in refused.json()
    denials = [e for e in audit_entries(api.settings, "tokens.create") if e.outcome == "denied"]
    assert [(e.user_name, e.details["user"]) for e in denials] == [("admin", "operator"), ("admin", victim)]


def test_machines_use_service_accounts_whose_tokens_an_admin_issues(api: Api) -> None:
    admin = api.admin
    account = {"name": "case-system", "roles": ["investigator"], "service": True}
    assert admin.post("/api/v1/users", json=account).json()["service"] is True
    issued = admin.post("/api/v1/users/case-system/tokens", json={"name": "nightly", "days": 30})
    assert issued.status_code == 201, issued.text
    assert api.client(issued.json()["token"]).get("/api/v1/me").json()["name"] == "case-system"
    # It holds no role that decides about people or oversees them, has no password, makes no token.
    for role in ("admin", "supervisor", "dpo", "auditor"):
        too_much = {"name": f"bot-{role}", "roles": [role], "service": True}
        assert (
            "service account"
            in assert_problem(admin.post("/api/v1/users", json=too_much), 400, REFUSED)["detail"]
        )
    with_password = {**account, "name": "bot-pw", "password": USER_PASSWORD}
    assert_problem(admin.post("/api/v1/users", json=with_password), 400, REFUSED)
    assert_problem(api.log_in("case-system", ""), 401, "/problems/authentication")
    bot = api.client(issued.json()["token"])
    assert_problem(bot.post("/api/v1/users/case-system/tokens", json={}), 403, FORBIDDEN)
    creation = audit_entries(api.settings, "users.create")[-1]
    assert (creation.user_name, creation.details["service"]) == ("admin", True)


def test_the_bootstrap_operator_has_no_login_and_no_token_even_with_a_password_left_behind(
    api: Api,
) -> None:
    # An older version's bootstrap row, given a password and a token (as a dishonest insider might).
    sessions = open_catalog(api.settings.catalog_url)
    with sessions.begin() as session:
        user = User(
            name="operator-old",
            is_bootstrap=True,
            password_hash=passwords.hash_password(USER_PASSWORD),
            roles=[UserRole(role=role.value) for role in accounts.STAFF_ROLES],
        )
        session.add(user)
        session.flush()
        plain = "ftk_left-behind"
        digest = hashlib.sha256(plain.encode()).hexdigest()
        session.add(
            ApiToken(user=user, name="old", token_sha256=digest, expires_at=datetime(2100, 1, 1, tzinfo=UTC))
        )

    browser = Browser(api)
    for name in ("operator", "operator-old"):
        refused = browser.log_in(name, USER_PASSWORD)
        assert refused.status_code == 401 and "wrong user name or password" in refused.text
        assert_problem(api.log_in(name, USER_PASSWORD), 401, "/problems/authentication")
    assert COOKIE not in browser.client.cookies or "login" not in browser.cookie()
    assert_problem(api.client(plain).get("/api/v1/me"), 401, "/problems/authentication")


def test_the_command_line_needs_a_token_once_an_admin_exists_and_listing_users_creates_none(
    gov_settings: Settings,
) -> None:
    operator = Governance.open(gov_settings)  # a fresh install: no admin yet
    assert operator.actor.bootstrap
    assert operator.accounts.users() == []  # and still no account: the operator is not one
    with pytest.raises(Exception, match="neither gets nor issues tokens"):
        operator.accounts.issue_token("operator", "cli", 1)
    operator.accounts.add_user("root", ["admin"], None, USER_PASSWORD)
    with pytest.raises(AuthenticationError, match="bootstrap operator is off"):
        Governance.open(gov_settings)
    assert Governance.open(gov_settings.model_copy(update={"allow_bootstrap": True})).actor.bootstrap
    root = Governance.with_password(gov_settings, operator.sessions, "root", USER_PASSWORD)
    token = root.accounts.issue_token("root", "cli", 1).token
    assert Governance.open(gov_settings, token).actor.name == "root"


# --- web logins live on the server -----------------------------------------------------------------------


def test_the_cookie_holds_a_session_id_not_a_token_and_logout_kills_it(api: Api) -> None:
    name, _ = api.new_user("investigator")
    browser = Browser(api)
    assert browser.log_in(name, USER_PASSWORD).url.path == "/search"
    carried = browser.cookie()
    assert set(carried) == {"login", "csrf"}
    assert not any(str(value).startswith(accounts.TOKEN_PREFIX) for value in carried.values())
    with open_catalog(api.settings.catalog_url)() as session:
        logins = session.scalars(select(WebSession).join(User).where(User.name == name)).all()
        assert len(logins) == 1 and logins[0].revoked_at is None
        assert logins[0].session_sha256 == hashlib.sha256(carried["login"].encode()).hexdigest()
        tokens = session.scalars(select(ApiToken).join(User).where(User.name == name)).all()
        assert [t.name for t in tokens] == ["login"]  # the API login of new_user; the web made none

    # The web login is no API credential: it cannot mint a token of its own without the password.
    minted = browser.client.post(f"/api/v1/users/{name}/tokens", json={"name": "forever", "days": 3650})
    assert_problem(minted, 401, "/problems/authentication")

    stolen = dict(browser.client.cookies)
    browser.client.post("/logout", data={"csrf": browser.csrf("/search")})
    replay = httpx.Client(base_url=api.url, cookies=stolen, follow_redirects=True)
    assert replay.get("/search").url.path == "/login"
    replay.close()
    with open_catalog(api.settings.catalog_url)() as session:
        assert session.scalars(select(WebSession.revoked_at)).one() is not None
    assert [e.user_name for e in audit_entries(api.settings, "web_logins.end")] == [name]


# --- accounts have a life cycle ------------------------------------------------------------------------


def test_a_disabled_user_is_refused_at_once_and_comes_back_when_enabled(api: Api) -> None:
    name, client = api.new_user("investigator")
    browser = Browser(api)
    browser.log_in(name, USER_PASSWORD)
    admin = api.admin
    assert admin.patch(f"/api/v1/users/{name}", json={"disabled": True}).json()["disabled"] is True
    assert "disabled" in assert_problem(client.get("/api/v1/me"), 401, "/problems/authentication")["detail"]
    assert browser.client.get("/search").url.path == "/login"
    assert_problem(api.log_in(name, USER_PASSWORD), 401, "/problems/authentication")
    assert_problem(admin.patch("/api/v1/users/admin", json={"disabled": True}), 400, REFUSED)  # not oneself

    admin.patch(f"/api/v1/users/{name}", json={"disabled": False})
    assert client.get("/api/v1/me").json()["name"] == name
    assert [e.details["user"] for e in audit_entries(api.settings, "users.disable")] == [name]
    assert [e.details["user"] for e in audit_entries(api.settings, "users.enable")] == [name]


def test_an_admin_changes_roles_and_unit_lists_and_revokes_tokens(api: Api) -> None:
    name, client = api.new_user("investigator", unit="north")
    admin = api.admin
    assert admin.post("/api/v1/units", json={"name": "South"}).status_code == 201
    changed = admin.patch(f"/api/v1/users/{name}", json={"roles": ["supervisor"], "unit": "south"})
    assert (changed.json()["roles"], changed.json()["unit"]) == (["supervisor"], "South")
    assert client.get("/api/v1/me").json() == {"name": name, "roles": ["supervisor"], "unit": "South"}
    roles_entry = audit_entries(api.settings, "users.roles")[-1]
    assert (roles_entry.details["old"], roles_entry.details["new"]) == (["investigator"], ["supervisor"])

    own = client.post(f"/api/v1/users/{name}/tokens", json={"name": "laptop", "days": 30}).json()
    listed = admin.get(f"/api/v1/users/{name}/tokens").json()
    assert {t["name"] for t in listed} == {"login", "laptop"} and "token" not in listed[0]
    assert admin.delete(f"/api/v1/tokens/{own['id']}").status_code == 204
    assert_problem(api.client(own["token"]).get("/api/v1/me"), 401, "/problems/authentication")
    assert audit_entries(api.settings, "tokens.revoke")[-1].details == {"token_id": own["id"], "user": name}


def test_a_reset_password_must_be_changed_before_anything_else(api: Api) -> None:
    name, client = api.new_user("dpo")
    # Whoever stole the old password made a long-lived token with it before the reset.
    kept = client.post(f"/api/v1/users/{name}/tokens", json={"name": "mine", "days": 3650}).json()["token"]
    reset = api.admin.post(f"/api/v1/users/{name}/password-reset")
    temporary = reset.json()["temporary_password"]
    for token in (kept, client.headers["Authorization"].removeprefix("Bearer ")):
        assert_problem(api.client(token).get("/api/v1/me"), 401, "/problems/authentication")
    assert_problem(api.log_in(name, USER_PASSWORD), 401, "/problems/authentication")
    assert_problem(api.log_in(name, temporary), 403, "/problems/password-change-required")
    browser = Browser(api)
    page = browser.log_in(name, temporary)
    assert page.status_code == 403 and "Change your password" in page.text
    assert COOKIE not in browser.client.cookies or "login" not in browser.cookie()

    form = {"csrf": browser.csrf("/password"), "username": name, "password": temporary}
    weak = browser.client.post(
        "/password", data={**form, "new_password": "short", "confirm_password": "short"}
    )
    assert weak.status_code == 400 and "at least 12 characters" in weak.text
    new = "a brand new passphrase"
    changed = browser.client.post("/password", data={**form, "new_password": new, "confirm_password": new})
    assert changed.url.path == "/dpo"
    assert api.log_in(name, new).status_code == 200
    assert_problem(api.log_in(name, temporary), 401, "/problems/authentication")
    assert [e.user_name for e in audit_entries(api.settings, "users.password_change")] == [name]


def test_weak_passwords_are_refused(api: Api) -> None:
    admin = api.admin
    common = "1QAZ2WSX3EDC"  # in the list of common passwords (compared ignoring case), 12 characters
    for password, reason in [
        ("short-pw", "at least 12"),
        (common, "common passwords"),
        ("weak-user-12", "user name"),
    ]:
        refused = admin.post(
            "/api/v1/users", json={"name": "weak-user-12", "roles": ["dpo"], "password": password}
        )
        assert reason in assert_problem(refused, 400, "/problems/refused")["detail"]
    name, _ = api.new_user("dpo")
    changed = api.client().post(
        "/api/v1/auth/password", data={"username": name, "password": USER_PASSWORD, "new_password": common}
    )
    assert "common passwords" in assert_problem(changed, 400, REFUSED)["detail"]


# --- guessing passwords does not work ---------------------------------------------------------------------


def test_failed_logins_are_audited_and_throttled_per_account(api: Api) -> None:
    name, _ = api.new_user("investigator")
    for _ in range(5):
        assert_problem(api.log_in(name, "not the password"), 401, "/problems/authentication")
    blocked = api.log_in(name, USER_PASSWORD)  # even the right password waits now
    assert_problem(blocked, 429, "/problems/login-throttled")
    assert int(blocked.headers["retry-after"]) > 0
    failures = [e for e in audit_entries(api.settings, "auth.login") if e.outcome == "refused"]
    assert len(failures) == 5
    assert {(e.user_name, e.details["user_name"], e.details["address"]) for e in failures} == {
        ("anonymous", name, "127.0.0.1")
    }
    assert failures[-1].details["blocked_for_s"] > 0
    # The web login is the same door.
    assert Browser(api).log_in(name, USER_PASSWORD).status_code == 429


def test_the_wait_doubles_with_each_further_failure(gov_settings: Settings) -> None:
    sessions = open_catalog(gov_settings.catalog_url)
    waits = []
    for _ in range(8):
        with sessions.begin() as session:
            waits.append(login_throttle.failed(session, "ivy", "192.0.2.7"))
    assert waits == [0, 0, 0, 0, 30, 60, 120, 240]
    with sessions.begin() as session, pytest.raises(LoginThrottledError) as throttled:
        login_throttle.check(session, "someone else", "192.0.2.7")  # the address waits too
    assert 0 < throttled.value.retry_after_s <= 240


def test_failed_logins_are_throttled_per_address_too(api: Api) -> None:
    for attempt in range(5):  # one guess each at five accounts: password spraying
        assert_problem(api.log_in(f"someone-{attempt}", "guess"), 401, "/problems/authentication")
    sprayed = api.log_in("someone-else", "guess")
    assert_problem(sprayed, 429, "/problems/login-throttled")
    assert int(sprayed.headers["retry-after"]) > 0


def test_a_burst_of_logins_hashes_at_most_a_bounded_number_of_passwords_at_once() -> None:
    """Every hashing slot and waiting place taken: the next login is refused at once (503), not queued."""
    taken = passwords.CONCURRENT_HASHES + passwords.WAITING_HASHES
    for _ in range(taken):
        assert passwords._admitted.acquire(blocking=False)
    try:
        with pytest.raises(BusyError) as busy:
            passwords.verify("a password", None)
        assert busy.value.retry_after_s == 1
    finally:
        for _ in range(taken):
            passwords._admitted.release()
    assert passwords.verify("a password", None) == (False, None)


def test_the_token_endpoint_reads_only_small_url_encoded_forms(api: Api) -> None:
    url = f"{api.url}/api/v1/auth/token"
    fields = {"username": "admin", "password": ADMIN_PASSWORD}
    multipart = httpx.post(url, data=fields, files={"file": ("small.bin", b"x" * 1000)})
    assert_problem(multipart, 415)
    # One too large for any login is refused from its length, before a byte of it is read.
    large = httpx.post(url, data=fields, files={"file": ("big.bin", b"x" * 1_000_000)})
    assert "larger than the limit" in assert_problem(large, 413)["detail"]
    assert_problem(httpx.post(url, json=fields), 415)
    assert_problem(httpx.post(url, data={**fields, "padding": "x" * 20_000}), 413)
    assert_problem(httpx.post(url, data={"username": "admin"}), 422)
    assert httpx.post(url, data=fields).status_code == 200


# --- units are entities ---------------------------------------------------------------------------------


def test_units_are_created_by_an_admin_and_told_apart_ignoring_case(api: Api) -> None:
    admin = api.admin
    assert admin.post("/api/v1/units", json={"name": "North"}).json() == "North"
    duplicate = admin.post("/api/v1/units", json={"name": "north "})
    assert "differs only by case" in assert_problem(duplicate, 400, REFUSED)["detail"]
    assert admin.get("/api/v1/units").json() == ["North"]
    unknown = admin.post("/api/v1/users", json={"name": "ivy", "roles": ["investigator"], "unit": "Nord"})
    assert "facetrace unit add" in assert_problem(unknown, 404, "/problems/not-found")["detail"]
    person = {"name": "ivy", "roles": ["investigator"], "unit": "NORTH", "password": USER_PASSWORD}
    assert admin.post("/api/v1/users", json=person).json()["unit"] == "North"
    assert_problem(api.as_role("investigator").post("/api/v1/units", json={"name": "Mine"}), 403, FORBIDDEN)
    assert [e.details["unit"] for e in audit_entries(api.settings, "units.create")] == ["North"]
    # Control characters are no part of a name (PostgreSQL cannot even compare a NUL): a clear 422.
    # (A unit's spacing is collapsed, a newline with it; a NUL is no spacing.)
    assert_problem(admin.post("/api/v1/units", json={"name": "No\x00rth"}), 422, "/problems/invalid-value")
    for hostile in ("iv\x00y", "ivy\nrole: admin"):
        forged = {"name": hostile, "roles": ["investigator"], "unit": "North", "password": USER_PASSWORD}
        assert_problem(admin.post("/api/v1/users", json=forged), 422, "/problems/invalid-value")
        changed = admin.patch(f"/api/v1/users/{quote(hostile)}", json={"disabled": True})
        assert (changed.status_code, changed.json()["type"]) == (422, "/problems/invalid-value")


def test_the_migration_merges_units_typed_twice_and_kills_the_bootstrap_operators_tokens(
    gov_settings: Settings,
) -> None:
    engine = create_catalog_engine(gov_settings.catalog_url)
    config = alembic_config(engine)
    command.upgrade(config, "0014")
    with engine.begin() as connection:
        now = datetime.now(UTC)
        for unit_id, name in [(1, "North"), (2, "north "), (3, "South")]:
            connection.execute(
                text("INSERT INTO units (id, name, created_at) VALUES (:i, :n, :t)"),
                {"i": unit_id, "n": name, "t": now},
            )
        for user_id, name, unit_id, bootstrap in [(1, "ivy", 2, False), (2, "operator", None, True)]:
            connection.execute(
                text(
                    "INSERT INTO users (id, name, unit_id, is_bootstrap, disabled, created_at) "
                    "VALUES (:i, :n, :u, :b, false, :t)"
                ),
                {"i": user_id, "n": name, "u": unit_id, "b": bootstrap, "t": now},
            )
        connection.execute(
            text(
                "INSERT INTO api_tokens (user_id, name, token_sha256, created_at, expires_at) "
                "VALUES (2, 'ten years', :digest, :t, :t)"
            ),
            {"digest": "0" * 64, "t": now.replace(year=now.year + 10)},
        )
    with engine.begin() as connection:  # as the catalog migrates: on SQLite, foreign keys enforced
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with engine.connect() as connection:
        units = connection.execute(text("SELECT id, name, name_key FROM units ORDER BY id")).all()
        assert [tuple(row) for row in units] == [(1, "North", "north"), (3, "South", "south")]
        assert connection.execute(text("SELECT unit_id FROM users WHERE name = 'ivy'")).scalar() == 1
        assert connection.execute(text("SELECT revoked_at FROM api_tokens")).scalar() is not None
    engine.dispose()
