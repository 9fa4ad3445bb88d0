"""Domain errors. Each carries the sentence a member reads and the HTTP status it maps to.

The blueprints map them to responses in one error handler (`linkmsg.web`).
"""


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(DomainError):
    """Input that breaks a rule of the form it came in (length, format, required).

    A form with several faulty fields raises one error for the first and carries the others
    in `others`, so that the member sees every fault at once.
    """

    status_code = 422

    def __init__(self, message: str, *, field: str | None = None, others=()):
        super().__init__(message, field=field)
        self.others: tuple[ValidationFailed, ...] = tuple(others)

    @classmethod
    def of(cls, problems: list["ValidationFailed"]) -> "ValidationFailed":
        first, *rest = problems
        return cls(first.message, field=first.field, others=rest)

    def each(self) -> tuple["ValidationFailed", ...]:
        return (self, *self.others)


class CouldNotStore(ValidationFailed):
    """An upload that is fine but finds no room to be kept (the disk is full). It is told
    next to the file field like a validation error, so the form keeps what was typed."""

    status_code = 507


class EmailTaken(ValidationFailed):
    def __init__(self):
        super().__init__(
            "An account with this email already exists. Log in instead.", field="email"
        )


class InvalidCredentials(DomainError):
    status_code = 401

    def __init__(self):
        super().__init__("That email and password do not match an account.")


class AccountSuspended(DomainError):
    """The right password for a suspended account: said only to whoever knows it."""

    status_code = 401

    def __init__(self):
        super().__init__("This account is suspended.")


class NotFound(DomainError):
    status_code = 404

    def __init__(self, message: str = "Not found."):
        super().__init__(message)


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    status_code = 409


class RateLimited(DomainError):
    status_code = 429
    retry_after: int | None = None  # seconds until trying again can succeed (Retry-After)
