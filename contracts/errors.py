"""Typed errors that cross RPC. Registered with nameko so a caller gets `LeadNotFound`, not
`RemoteError`; the gateway maps each to a problem-details response in one table."""

from nameko.exceptions import deserialize_to_instance


class DomainError(Exception):
    """Base of every expected error. Args stay JSON-safe: (detail, errors)."""

    def __init__(self, detail: str, errors: dict | None = None):
        super().__init__(detail, errors or {})
        self.detail = detail
        self.errors = errors or {}

    def __str__(self) -> str:
        return self.detail


@deserialize_to_instance
class InvalidInput(DomainError):
    """The request is well-formed JSON but breaks a rule (field errors in `errors`)."""


@deserialize_to_instance
class OutsideJurisdiction(DomainError):
    """The place lies outside all five cities."""


@deserialize_to_instance
class NotFound(DomainError):
    """The thing does not exist, or the caller may not see it."""


@deserialize_to_instance
class Forbidden(DomainError):
    """The caller's role or organisation may not do this."""


@deserialize_to_instance
class Conflict(DomainError):
    """The thing is not in a state that allows this action."""


EXPECTED_ERRORS = (InvalidInput, OutsideJurisdiction, NotFound, Forbidden, Conflict)
