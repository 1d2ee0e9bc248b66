"""The purpose record every search needs, and the audit record a search attempt leaves.

The probe's sha256 is logged, never the probe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from facetrace.governance.audit import Record
from facetrace.governance.roles import Action


@dataclass(frozen=True, slots=True)
class Purpose:
    """Why a search is run: the record the AI Act (art. 26(10)) asks for with every use."""

    case_ref: str | None
    offence: str | None
    justification: str | None
    authorisation_ref: str | None = None

    def problems(self, offence_categories: Sequence[str]) -> list[str]:
        """What the record lacks; ``offence_categories``: those the deployment's policy lists."""
        found = []
        if not (self.case_ref or "").strip():
            found.append("a case reference (--case-ref)")
        if not (self.offence or "").strip():
            found.append(f"an offence category (--offence: one of {', '.join(offence_categories)})")
        elif self.offence not in offence_categories:
            found.append(
                f"an offence category from the list ({', '.join(offence_categories)}), not {self.offence!r}"
            )
        if len((self.justification or "").strip()) < 10:
            found.append("a justification of at least 10 characters (--purpose)")
        return found


def search_record(purpose: Purpose, probe: bytes, outcome: str, **fields: object) -> Record:
    return Record(
        action=Action.SEARCH.value,
        outcome=outcome,
        case_ref=purpose.case_ref,
        offence=purpose.offence,
        purpose=purpose.justification,
        authorisation_ref=purpose.authorisation_ref,
        probe_sha256=hashlib.sha256(probe).hexdigest(),
        **fields,  # type: ignore[arg-type]
    )
