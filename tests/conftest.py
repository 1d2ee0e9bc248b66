"""The suite's hooks: the ``--catalog`` option and the plugins that give every test its fixtures.

The fixtures and helpers live in ``tests/support/`` by concern (tests import the helpers from there):
catalogs.py (settings, the throwaway PostgreSQL cluster, ``--catalog postgres``), hashing.py (cheap
password hashes in the test process), photos.py (real images, the analyzer), governed.py (governed
installs), api.py (the app served on a loopback port), browser.py (Chromium driven by Playwright),
server_processes.py (real ``facetrace serve`` processes), sites.py (test websites to crawl) and cli.py
(the ``facetrace`` command).
"""

from __future__ import annotations

import pytest

# Before any of them is imported: the helpers' asserts (assert_problem, ...) explain their failures.
pytest.register_assert_rewrite("support")

from support.catalogs import on_postgres  # noqa: E402

#: The support modules that define fixtures: available to every test.
pytest_plugins = [
    "support.catalogs",
    "support.hashing",
    "support.photos",
    "support.governed",
    "support.api",
    "support.browser",
    "support.server_processes",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--catalog",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="where each test's default catalog lives: a SQLite file (default) or a fresh database on a "
        "throwaway PostgreSQL cluster",
    )


def pytest_report_header(config: pytest.Config) -> str:
    where = "fresh PostgreSQL databases (throwaway cluster)" if on_postgres(config) else "SQLite files"
    return f"catalog: {where}"


#: Why the PostgreSQL pass skips a test (see support/catalogs.py).
NOT_IN_POSTGRES_PASS = {
    "no_catalog": "never opens a catalog: --catalog postgres cannot change it (the default pass runs it)",
    "picks_catalog": "picks its own catalog (gov_settings, pg_url): the default pass ran it just the same",
    "sqlite_only": "checks the SQLite catalog itself",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not on_postgres(config):
        return
    for item in items:
        sqlite_only = item.get_closest_marker("sqlite_only")
        if sqlite_only is not None:
            why = f": {sqlite_only.args[0]}" if sqlite_only.args else ""
            item.add_marker(pytest.mark.skip(reason=NOT_IN_POSTGRES_PASS["sqlite_only"] + why))
        elif item.get_closest_marker("no_catalog") is not None:
            item.add_marker(pytest.mark.skip(reason=NOT_IN_POSTGRES_PASS["no_catalog"]))
        elif {"gov_settings", "pg_url", "cluster"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.skip(reason=NOT_IN_POSTGRES_PASS["picks_catalog"]))
