"""Roles, actions, and the one table that says which role may do what.

Every interface (CLI now, API and web later) asks :func:`facetrace.governance.policy.authorize`,
which reads this table; no command or route carries a rule of its own.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # users, sources, collection, settings
    INVESTIGATOR = "investigator"  # searches
    SUPERVISOR = "supervisor"  # the unit's audit trail (authorisations and reports later)
    DPO = "dpo"  # data-subject rights, purges, retention, records of processing
    AUDITOR = "auditor"  # read-only: the audit log and its verification
    #: Reads the server's metrics (request counts, what the gallery holds: numbers, never data); the
    #: one role besides searching that a service account (a Prometheus server) may hold.
    MONITOR = "monitor"
    #: The public rights portal's own account (no password): files a person's request and tells
    #: them its status by reference; nothing else.
    PUBLIC = "public"


class Action(StrEnum):
    SEARCH = "search"
    REQUEST_AUTHORISATION = "authorisation.request"
    DECIDE_AUTHORISATION = "authorisation.decide"  # grant, refuse, or record an external one
    MANAGE_SOURCES = "sources.manage"  # ingest under a source, reindex
    MANAGE_USERS = "users.manage"  # users, units, roles, other people's tokens
    READ_AUDIT = "audit.read"  # verify and export the audit log
    VIEW_REPORTS = "reports.view"  # usage per unit/user/month, the annual report
    VIEW_RECORDS = "records.view"  # records of processing (GDPR art. 30)
    CONFIGURE = "settings.manage"  # calibration and other settings stored in the catalog
    ERASE = "data.erase"  # erasure (dry run and execution) and jurisdiction purges
    HANDLE_RIGHTS = "rights.handle"  # data-subject requests: verify, execute, refuse, the queue
    FILE_RIGHTS_REQUEST = "rights.file"  # file a data-subject request, follow it by its reference
    VIEW_STATS = "stats.view"
    #: The server's Prometheus metrics (/metrics): request counts and what the gallery holds.
    READ_METRICS = "metrics.read"


ALLOWED: dict[Action, frozenset[Role]] = {
    Action.SEARCH: frozenset({Role.INVESTIGATOR}),
    Action.REQUEST_AUTHORISATION: frozenset({Role.INVESTIGATOR}),
    Action.DECIDE_AUTHORISATION: frozenset({Role.SUPERVISOR}),
    Action.MANAGE_SOURCES: frozenset({Role.ADMIN}),
    Action.MANAGE_USERS: frozenset({Role.ADMIN}),
    Action.READ_AUDIT: frozenset({Role.AUDITOR, Role.SUPERVISOR, Role.DPO}),
    Action.VIEW_REPORTS: frozenset({Role.SUPERVISOR, Role.DPO, Role.AUDITOR}),
    Action.VIEW_RECORDS: frozenset({Role.DPO, Role.AUDITOR}),
    Action.CONFIGURE: frozenset({Role.ADMIN}),
    Action.ERASE: frozenset({Role.DPO}),
    Action.HANDLE_RIGHTS: frozenset({Role.DPO}),
    Action.FILE_RIGHTS_REQUEST: frozenset({Role.DPO, Role.PUBLIC}),
    Action.VIEW_STATS: frozenset(Role) - {Role.PUBLIC, Role.MONITOR},
    Action.READ_METRICS: frozenset({Role.ADMIN, Role.AUDITOR, Role.MONITOR}),
}


def may(roles: frozenset[str], action: Action) -> bool:
    """Whether a user holding ``roles`` (as :class:`~facetrace.governance.audit.Actor` has them) may act."""
    return bool(roles & ALLOWED[action])
