"""The policy is the deployment's, not the process's: authorisation policy, quotas, burst alarm, offence
categories and display limit live in the catalog, the environment only seeds a new deployment, and only
an admin changes them (CLI, API, web), each change checked and audited with old and new value.
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from facetrace.cli.app import app
from facetrace.core.config import Settings
from facetrace.core.errors import InvalidValueError, PermissionDeniedError
from facetrace.governance.service import Governance
from facetrace.store.governance_models import AuditEntry
from support.api import ADMIN_PASSWORD, assert_problem, serving_api, staff_token
from support.ingesting import ingest

PURPOSE = ["--case-ref", "C-1", "--offence", "homicide", "--purpose", "suspect seen on camera 4"]


def entries(gov: Governance, action: str) -> list[AuditEntry]:
    with gov.sessions() as session:
        return list(
            session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        )


def cli(settings: Settings, *arguments: str, token: str, **environment: str) -> object:
    """``facetrace ARGUMENTS`` run as the token's user, in an environment of its own."""
    if settings.database_url:
        environment["FACETRACE_DATABASE_URL"] = settings.database_url
    return CliRunner().invoke(
        app,
        ["--data-dir", str(settings.data_dir), *arguments],
        env={"FACETRACE_TOKEN": token, **environment},
    )


def test_a_command_line_process_follows_the_catalogs_policy_whatever_its_environment(
    gov_settings: Settings, operator: Governance, tmp_path: Path, astronaut_jpeg: bytes
) -> None:
    photo = tmp_path / "photos" / "astronaut.jpg"
    photo.parent.mkdir()
    photo.write_bytes(astronaut_jpeg)
    ingest(gov_settings, [str(photo.parent)], source_name="nasa")
    operator.policy.change("authorisation_policy", "required")
    token = staff_token(gov_settings, operator, "ivy", ["investigator"], "north")

    searched = cli(
        gov_settings, "search", str(photo), *PURPOSE, token=token, FACETRACE_AUTHORISATION_POLICY="none"
    )
    assert searched.exit_code == 1
    assert "requires an authorisation" in searched.output
    refused = [e for e in entries(operator, "search") if e.user_name == "ivy"]
    assert [e.outcome for e in refused] == ["refused"]

    shown = cli(gov_settings, "policy", "show", "--json", token=token, FACETRACE_AUTHORISATION_POLICY="none")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["authorisation_policy"] == "required"
    changed = cli(gov_settings, "policy", "set", "authorisation_policy", "none", token=token)
    assert changed.exit_code == 1 and "may not" in changed.output, changed.output
    assert operator.policy.show().authorisation_policy == "required"


def test_a_new_deployment_is_seeded_from_its_environment_once(gov_settings: Settings) -> None:
    first = Governance.open(
        gov_settings.model_copy(update={"searches_per_day": 3, "authorisation_policy": "urgent"})
    )
    assert first.policy.show().searches_per_day == 3
    later = Governance.open(
        gov_settings.model_copy(update={"searches_per_day": 999, "authorisation_policy": "none"})
    )
    shown = later.policy.show()
    assert (shown.searches_per_day, shown.authorisation_policy) == (3, "urgent")
    [seed] = entries(later, "policy.seed")
    assert seed.details["values"]["searches_per_day"] == 3


def test_only_an_admin_changes_the_policy_and_each_change_is_audited(
    gov_settings: Settings, operator: Governance
) -> None:
    assert operator.policy.change("searches_per_day", "7") == (50, 7)
    assert operator.policy.change("offence_categories", "homicide, fraud") == (
        list(Settings().offence_categories),
        ["homicide", "fraud"],
    )
    assert operator.policy.change("max_expected_false_matches", "none") == (1.0, None)
    changes = [e.details for e in entries(operator, "policy.change")]
    assert changes[0] == {"name": "searches_per_day", "old": 50, "new": 7}
    assert changes[2] == {"name": "max_expected_false_matches", "old": 1.0, "new": None}

    token = staff_token(gov_settings, operator, "sue", ["supervisor", "investigator", "dpo"], "north")
    with pytest.raises(PermissionDeniedError, match=r"settings\.manage"):
        Governance.open(gov_settings, token).policy.change("searches_per_day", "1000")
    assert [e.outcome for e in entries(operator, "settings.manage")] == ["denied"]
    assert Governance.open(gov_settings, token).policy.show().searches_per_day == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_expected_false_matches", "nan"),
        ("max_expected_false_matches", math.nan),
        ("max_expected_false_matches", "inf"),
        ("max_expected_false_matches", -math.inf),
        ("max_expected_false_matches", "-1"),
        ("searches_per_day", "0"),
        ("searches_per_day", "2.5"),
        ("searches_per_day", True),
        ("authorisation_policy", "sometimes"),
        ("authorisation_scope", "everyone"),
        ("authorisation_valid_days", "100000"),
        ("offence_categories", "[]"),
        ("offence_categories", "homicide, homicide"),
        ("offence_categories", "homicide, "),
        ("no_such_setting", "1"),
    ],
)
def test_a_value_of_the_wrong_type_range_or_kind_is_refused_and_changes_nothing(
    operator: Governance, name: str, value: object
) -> None:
    before = operator.policy.show()
    with pytest.raises(InvalidValueError):
        operator.policy.change(name, value)
    assert operator.policy.show() == before
    assert entries(operator, "policy.change") == []


def test_the_api_shows_the_policy_to_staff_and_lets_only_an_admin_change_it(
    gov_settings: Settings, astronaut_jpeg: bytes
) -> None:
    settings = Settings(
        data_dir=gov_settings.data_dir,
        database_url=gov_settings.database_url,
        workers=1,
        admin_password=ADMIN_PASSWORD,
        authorisation_policy="required",  # the server's environment seeds the new deployment
    )
    with serving_api(settings) as api:
        investigator = api.as_role("investigator")
        assert investigator.get("/api/v1/policy").json()["authorisation_policy"] == "required"  # the server's
        refused = investigator.put("/api/v1/policy", json={"name": "authorisation_policy", "value": "none"})
        assert_problem(refused, 403, "/problems/permission-denied")

        admin = api.admin
        changed = admin.put("/api/v1/policy", json={"name": "searches_per_day", "value": 5})
        assert changed.status_code == 200, changed.text
        assert changed.json() == {"name": "searches_per_day", "old": 50, "new": 5}
        not_finite = admin.put(
            "/api/v1/policy",
            content=b'{"name": "max_expected_false_matches", "value": NaN}',
            headers={"content-type": "application/json"},
        )
        assert not_finite.status_code == 422, not_finite.text
        as_text = admin.put(
            "/api/v1/policy", json={"name": "max_expected_false_matches", "value": "Infinity"}
        )
        assert_problem(as_text, 422, "/problems/invalid-value")
        assert admin.get("/api/v1/policy").json()["max_expected_false_matches"] == 1.0

        search = investigator.post(
            "/api/v1/search",
            data={"case_ref": "C-1", "offence": "homicide", "justification": "suspect seen on camera 4"},
            files={"photo": ("probe.jpg", astronaut_jpeg, "image/jpeg")},
        )
        assert "requires an authorisation" in assert_problem(search, 403, "/problems/authorisation")["detail"]
