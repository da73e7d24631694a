"""Every exception ragmem raises, under one root.

Each error also subclasses the builtin a caller would naturally catch, so
``except ValueError`` or ``except LookupError`` keeps working::

    RagmemError
    ├── ConfigurationError              (ValueError)   bad option or combination of options
    ├── MissingDependencyError          (ImportError)  an optional extra is not installed
    ├── UnknownBackendError             (LookupError)  no backend registered under that name
    ├── InvalidInputError               (ValueError)   bad ids, texts, metadata or arguments
    │   ├── DimensionMismatchError                     vector width differs from the store/model
    │   ├── InvalidVectorError                         NaN or infinite values, wrong shape
    │   ├── InvalidFilterError                         unknown operator or malformed filter
    │   └── TextTooLongError                           a text exceeds a model's window
    ├── NotFoundError                   (LookupError)  unknown ids
    ├── StorageError                    (OSError)      the on-disk state cannot be used
    │   ├── CorruptIndexError                          a file is truncated or corrupt (names it)
    │   └── StoreLockedError                           another process holds the write lock
    └── BackendError                                   a model or database failed (has .backend)
        ├── BackendUnavailableError                    connect error or timeout: retryable
        ├── BackendHTTPError                           non-success HTTP status (.status_code, .body)
        │   └── RateLimitError                         HTTP 429 (.retry_after)
        └── BackendResponseError                       a reply with the wrong shape or count
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "BackendError",
    "BackendHTTPError",
    "BackendResponseError",
    "BackendUnavailableError",
    "ConfigurationError",
    "CorruptIndexError",
    "DimensionMismatchError",
    "InvalidFilterError",
    "InvalidInputError",
    "InvalidVectorError",
    "MissingDependencyError",
    "NotFoundError",
    "RagmemError",
    "RateLimitError",
    "StorageError",
    "StoreLockedError",
    "TextTooLongError",
    "UnknownBackendError",
]


class RagmemError(Exception):
    """Root of every error ragmem raises."""


class ConfigurationError(RagmemError, ValueError):
    """An option, or a combination of options, is invalid."""


class MissingDependencyError(RagmemError, ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{package!r} is not installed; install it with: pip install 'ragmem[{extra}]'"
        )


class UnknownBackendError(RagmemError, LookupError):
    """No backend of this kind is registered under the given name."""

    def __init__(self, kind: str, name: str, *, available: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.available = sorted(available)
        super().__init__(
            f"unknown {kind} {name!r}; available: {', '.join(self.available) or '(none)'}"
        )

    def __str__(self) -> str:  # LookupError/KeyError would otherwise repr() the message
        return str(self.args[0])


class InvalidInputError(RagmemError, ValueError):
    """Ids, texts, metadata or arguments passed in are invalid."""


class DimensionMismatchError(InvalidInputError):
    """Vectors have a different width than the store or model expects."""

    def __init__(self, expected: int, got: int, *, what: str = "vectors") -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"{what} have dimension {got}, expected {expected}")


class InvalidVectorError(InvalidInputError):
    """A vector has NaN or infinite values, or the array has the wrong shape or type."""


class InvalidFilterError(InvalidInputError):
    """A metadata filter is malformed; ``path`` locates the bad node inside it."""

    def __init__(self, message: str, *, operator: str | None = None, path: str = "") -> None:
        self.operator = operator
        self.path = path
        where = f" at {path}" if path else ""
        op = f" (operator {operator})" if operator else ""
        super().__init__(f"invalid filter{where}{op}: {message}")


class TextTooLongError(InvalidInputError):
    """A text is longer than a model's window and truncation was not allowed."""


class NotFoundError(RagmemError, LookupError):
    """Some requested ids do not exist."""

    def __init__(self, ids: Sequence[str], *, what: str = "ids") -> None:
        self.ids = list(ids)
        shown = ", ".join(repr(i) for i in self.ids[:10])
        more = f" and {len(self.ids) - 10} more" if len(self.ids) > 10 else ""
        super().__init__(f"unknown {what}: {shown}{more}")

    def __str__(self) -> str:
        return str(self.args[0])


class StorageError(RagmemError, OSError):
    """The on-disk state cannot be read or written."""


class CorruptIndexError(StorageError):
    """A file of a persistent index is truncated or corrupt; ``path`` names it."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"corrupt index file {self.path}: {reason}")

    def __str__(self) -> str:
        return str(self.args[0])


class StoreLockedError(StorageError):
    """Another process holds the write lock on a persistent store."""

    def __init__(self, path: object) -> None:
        self.path = str(path)
        super().__init__(f"store at {self.path} is locked for writing by another process")

    def __str__(self) -> str:
        return str(self.args[0])


class BackendError(RagmemError):
    """A remote model or database failed; ``backend`` names it."""

    def __init__(self, message: str, *, backend: str) -> None:
        self.backend = backend
        super().__init__(f"{backend}: {message}")


class BackendUnavailableError(BackendError):
    """The backend could not be reached or did not answer in time (retryable)."""


class BackendHTTPError(BackendError):
    """The backend answered with a non-success HTTP status."""

    def __init__(self, status_code: int, body: str, *, backend: str) -> None:
        self.status_code = status_code
        self.body = body
        super().__init__(f"HTTP {status_code}: {body[:500]}", backend=backend)


class RateLimitError(BackendHTTPError):
    """The backend answered 429; ``retry_after`` holds its hint in seconds, if any."""

    def __init__(self, body: str, *, backend: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(429, body, backend=backend)


class BackendResponseError(BackendError):
    """The backend's reply had the wrong shape, count or dimension."""
