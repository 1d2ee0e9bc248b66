"""The audit log's keys: the public key to publish, signed anchors of the head, key rotation."""

from __future__ import annotations

from typing import Any

from facetrace.governance import audit, audit_keys, signing
from facetrace.governance.audit import Record
from facetrace.governance.roles import Action
from facetrace.governance.services.base import ServiceBase


class AuditKeyService(ServiceBase):
    def audit_public_keys(self) -> dict[str, Any]:
        """The key this deployment signs with now (taken from its key file, so it is the one to
        trust) and every key the catalog lists, with the entries each signed."""
        self.allow(Action.READ_AUDIT)
        current = audit_keys.signer_of(self.sessions).key_for(None)
        with self.sessions() as session:
            keys = audit.public_keys(session)
        self.record(Record(action="audit.public_key", details={"key_id": current.key_id}))
        return {
            "format": "facetrace-audit-keys/1",
            "signing_key": {
                "key_id": current.key_id,
                "public_key": signing.public_to_text(current.public),
                "pem": signing.public_to_pem(current.public),
            },
            "keys": keys,
        }

    def audit_anchor(self) -> dict[str, Any]:
        """The head of the log, signed: to be kept elsewhere and given to ``verify`` later, which
        then finds out if entries up to it were cut off or rewritten. Recorded after it is taken."""
        self.allow(Action.READ_AUDIT)
        with self.sessions() as session:
            anchor = audit.make_anchor(session)
        self.record(Record(action="audit.anchor", details={"seq": anchor["seq"], "hash": anchor["hash"]}))
        return anchor

    def rotate_audit_key(self) -> dict[str, Any]:
        """Replace the signing key. The old private key is destroyed; its public key stays listed
        and the rotation entry (signed by the old key, countersigned by the new) links the two, so
        whoever trusts either key can check the entries of both."""
        self.allow(Action.CONFIGURE)
        signer = audit_keys.signer_of(self.sessions)
        try:
            with self.sessions.begin() as session:
                entry = audit_keys.rotate(session, signer, self.actor)
                details = dict(entry.details or {})
        except BaseException:
            audit_keys.staged_path(signer.path).unlink(missing_ok=True)
            raise
        audit_keys.install(signer, details["new_key_id"])
        return {
            "seq": entry.id,
            "old_key_id": details["old_key_id"],
            "new_key_id": details["new_key_id"],
        }
