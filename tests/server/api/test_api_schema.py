"""Every API operation fuzzed by schemathesis against the OpenAPI schema the running server publishes.

The schema is loaded over real HTTP from a server on 127.0.0.1 with a gallery of its own (fuzzing
may erase it). Each operation gets generated requests, valid and invalid, once as a user holding
every staff role (so a request gets past its role check into the work) and once without a token.
No answer may be a 5xx, and every answer must match what the schema documents for it. Examples
are derandomised, so a run is repeatable.

Each operation is a subtest driven through schemathesis' Python API (its strategies and checks):
its pytest integration (``schemathesis.pytest.from_fixture``) sets ``Node._nodeid``, which pytest
9.2 no longer has.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import response_schema_conformance

from facetrace.core.config import Settings
from facetrace.governance.roles import Role
from support.api import ADMIN_PASSWORD, Api, serving_api
from support.catalogs import Catalogs
from support.ingesting import ingest

CHECKS = [not_a_server_error, response_schema_conformance]
STAFF = [role.value for role in Role if role is not Role.PUBLIC]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, astronaut_jpeg: bytes, catalogs: Catalogs) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("schema")
    photo = root / "photos" / "astronaut.jpg"
    photo.parent.mkdir()
    photo.write_bytes(astronaut_jpeg)
    with catalogs.fresh() as database_url:
        settings = Settings(
            data_dir=root / "var", database_url=database_url, workers=1, admin_password=ADMIN_PASSWORD
        )
        ingest(settings, [str(photo.parent)], source_name="nasa", jurisdiction="US")
        with serving_api(settings) as api:
            yield api


@pytest.fixture(scope="module")
def operations(api: Api) -> list[APIOperation]:
    """Every operation of the schema the server publishes at /openapi.json."""
    published = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    return [result.ok() for result in published.get_all_operations()]


def every_role_headers(api: Api) -> dict[str, str]:
    """Acting as an admin who also holds every other staff role (with the token they logged in for)."""
    _, person = api.new_user(*STAFF)
    return {"Authorization": person.headers["Authorization"]}


def fuzz(
    operation: APIOperation,
    headers: dict[str, str],
    examples: int,
    *,
    modes: tuple[GenerationMode, ...] = tuple(GenerationMode),
    status: int | None = None,
) -> int:
    """Call ``operation`` with ``examples`` requests generated in ``modes`` (valid, invalid) and check
    every answer (and that it has ``status``, when given); returns how many requests were made."""
    cases = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in modes))
    calls = 0

    @given(case=cases)
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Case) -> None:
        nonlocal calls
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        calls += 1
        assert status is None or response.status_code == status, response.text

    check()
    return calls


@pytest.mark.slow
def test_every_operation_with_a_token_of_every_role(
    api: Api, operations: list[APIOperation], subtests: pytest.Subtests
) -> None:
    headers = every_role_headers(api)
    for operation in operations:
        with subtests.test(msg=operation.label):
            assert fuzz(operation, headers, examples=30)


def test_every_operation_without_a_token(operations: list[APIOperation], subtests: pytest.Subtests) -> None:
    """A valid request to anything but health and logging in is answered 401. (An invalid
    one may be answered 422 first: FastAPI reads a JSON body before it resolves the token.)"""
    for operation in operations:
        status = 401 if operation.definition.raw.get("security") else None
        with subtests.test(msg=operation.label):
            assert fuzz(operation, {}, examples=5, modes=(GenerationMode.POSITIVE,), status=status)
