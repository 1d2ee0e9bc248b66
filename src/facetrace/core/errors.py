"""Exceptions with messages meant for the person running Facetrace."""

from __future__ import annotations


class FacetraceError(Exception):
    """Base class: anything Facetrace refuses or cannot do, with a clear message."""


class ImageError(FacetraceError):
    """An input is not a usable image (not an image, truncated, corrupt, too large, unsupported)."""


class ModelIntegrityError(FacetraceError):
    """A model file is missing or does not match its recorded sha256."""


class ModelMismatchError(FacetraceError):
    """Vectors of one model were offered to an index built for another."""


class NoFaceError(FacetraceError):
    """A probe image holds no face (or not the one asked for)."""


class NotFoundError(FacetraceError):
    """What an action names (a user, a token, a request) does not exist."""


class PermissionDeniedError(FacetraceError):
    """The acting user's roles do not allow the action (the refusal itself is audited)."""


class AuthenticationError(FacetraceError):
    """No valid identity: unknown or expired token, wrong password, or the bootstrap account disabled."""


class PasswordChangeRequiredError(AuthenticationError):
    """The password is right, but an admin reset it: the user must choose a new one before anything else."""


class RetryLaterError(FacetraceError):
    """Refused for now; ``retry_after_s`` says when to try again (sent as ``Retry-After``)."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LoginThrottledError(RetryLaterError):
    """Too many failed logins for this account or from this address: wait before trying again."""


class BusyError(RetryLaterError):
    """Too many requests of a costly kind at once (e.g. password hashes): try again shortly."""


class PurposeError(FacetraceError):
    """A search without the purpose record policy requires (case reference, offence, justification)."""


class AuditWriteError(FacetraceError):
    """The audit entry could not be written, so the action it records did not happen."""


class QuotaError(FacetraceError):
    """The acting user has used up their searches for the day (the refusal is audited)."""


class InvalidValueError(FacetraceError):
    """A value given for a setting is of the wrong type, out of range, not allowed, or not finite."""


class AuthorisationError(FacetraceError):
    """A search's authorisation is missing, unknown, for another case, pending or refused."""


class ConflictError(FacetraceError):
    """What an action asks cannot be done in the state its target is in (e.g. a finished job cancelled)."""
