"""Domain errors. The data-access module turns DynamoDB failures into these (a failed
condition becomes a Conflict). Each carries its HTTP status: the API's exception handler
(`api/errors.py`) answers with it, as do the input gate for requests refused before routing
(`api/gate.py`) and the bulk review route for each item it reports (`api/review.py`)."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    headers: dict[str, str] = {}  # noqa: RUF012 (never mutated: subclasses set their own)

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra  # extra response fields, e.g. existingSampleId


class BadRequest(DomainError):
    status = 400


class Unauthorized(DomainError):
    status = 401


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Busy(Conflict):
    """Someone else holds the lease (e.g. another training run of the same function)."""


class PayloadTooLarge(DomainError):
    status = 413


class NotReady(DomainError):
    """The function cannot answer yet (e.g. no labels, or its first model is training)."""

    status = 409


class TooManyRequests(DomainError):
    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, retry_after))}
