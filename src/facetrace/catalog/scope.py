"""What a search may be narrowed to: some sources, some jurisdictions, or both (their intersection).

A narrowed search shows only faces seen in a source of its scope, and of each face only the
sightings in its scope. The scope is resolved to source ids from the sources table (a handful
of rows), never by scanning faces or sightings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facetrace.core.errors import FacetraceError
from facetrace.store.catalog_models import Source

_COUNTRY_CODE = re.compile("[A-Z]{2}")


@dataclass(frozen=True, slots=True)
class SearchScope:
    sources: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()  # two-letter country codes, upper case

    @classmethod
    def of(cls, sources: Iterable[str] = (), jurisdictions: Iterable[str] = ()) -> SearchScope:
        """A scope from what a user typed: blanks dropped, codes upper-cased, each named once."""
        codes = {code.strip().upper() for code in jurisdictions if code.strip()}
        for code in codes:
            if not _COUNTRY_CODE.fullmatch(code):
                raise FacetraceError(f"a jurisdiction is a two-letter country code such as FR, not {code!r}")
        names = {name.strip() for name in sources if name.strip()}
        return cls(tuple(sorted(names)), tuple(sorted(codes)))

    @property
    def narrowed(self) -> bool:
        return bool(self.sources or self.jurisdictions)

    def source_ids(self, session: Session) -> list[int]:
        """The ids of the sources in this scope (none may match); a source name nobody registered
        is an error rather than an empty result, so that a typo does not read as "not found"."""
        conditions = []
        if self.sources:
            conditions.append(Source.name.in_(self.sources))
            known = set(session.scalars(select(Source.name).where(Source.name.in_(self.sources))))
            unknown = sorted(set(self.sources) - known)
            if unknown:
                raise FacetraceError(f"no source named {', '.join(unknown)}")
        if self.jurisdictions:
            conditions.append(func.upper(Source.jurisdiction).in_(self.jurisdictions))
        return list(session.scalars(select(Source.id).where(*conditions)))

    def describe(self) -> str:
        """In words, for the CLI: 'sources a, b · jurisdictions FR' (empty for the whole gallery)."""
        parts = [f"sources {', '.join(self.sources)}"] if self.sources else []
        parts += [f"jurisdictions {', '.join(self.jurisdictions)}"] if self.jurisdictions else []
        return " · ".join(parts)

    def to_dict(self) -> dict[str, list[str]]:
        return {"sources": list(self.sources), "jurisdictions": list(self.jurisdictions)}

    def audit_details(self) -> dict[str, dict[str, list[str]]]:
        """What an audit record adds: the scope of a narrowed search, nothing for a whole one."""
        return {"scope": self.to_dict()} if self.narrowed else {}


#: A search of the whole gallery.
EVERYWHERE = SearchScope()
