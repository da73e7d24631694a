"""Keeping API keys out of errors, tracebacks and log records.

A server may echo the key it was sent (in an error body or a header), and SDKs and
HTTP libraries put bodies and headers into exception messages and DEBUG logs. Every
key a remote adapter holds is registered here when it is first known, and then:

* :func:`redact` masks it in any text, as is, in any letter case, URL-encoded, and
  base64-encoded at any alignment (so ``base64("Bearer " + key)`` is caught too);
* :func:`scrubbed` turns a vendor exception into a :class:`RedactedCause` chain that
  keeps each type, message (redacted) and traceback, so a ragmem error can be raised
  ``from`` it without carrying the key into ``traceback.format_exception``;
* a log record factory, installed once with the first key, masks the keys in every
  record's message and exception text, whichever logger (``httpx``, ``httpcore``,
  the SDKs, or their forks) made it.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["RedactedCause", "Secret", "redact", "register", "scrubbed"]

MASK = "***"
# Shorter strings are not masked: they would hide unrelated text everywhere.
_MIN_LENGTH = 4
_KEY_PATTERN = re.compile(r"\b(sk|pk|co|key)[-_][A-Za-z0-9_\-*]{6,}")
_URLSAFE = str.maketrans("+/", "-_")

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_factory_installed = False


def _fragments(secret: str) -> list[str]:
    """Regular expressions for each form of ``secret`` that a server may echo."""
    plain = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret)}
    fragments = [f"(?i:{re.escape(p)})" for p in plain]
    raw = secret.encode()
    for offset in range(3):
        # The base64 characters whose six bits all come from the secret: the same
        # whatever bytes precede it (at this offset modulo 3) or follow it.
        encoded = base64.b64encode(bytes(offset) + raw).decode()
        core = encoded[-(-8 * offset // 6) : 8 * (offset + len(raw)) // 6]
        if len(core) >= _MIN_LENGTH:
            fragments += [re.escape(core), re.escape(core.translate(_URLSAFE))]
    return fragments


def _compile(secrets: set[str]) -> re.Pattern[str] | None:
    fragments = [f for s in secrets for f in _fragments(s)]
    # Longest first, so a URL-encoded form is masked whole rather than in parts.
    fragments.sort(key=len, reverse=True)
    return re.compile("|".join(fragments)) if fragments else None


def register(secret: str | None) -> None:
    """Mask ``secret`` from now on in errors and log records of this process."""
    global _pattern
    if not secret or len(secret) < _MIN_LENGTH or secret in _secrets:
        return
    with _lock:
        _secrets.add(secret)
        _pattern = _compile(_secrets)
        _install_log_redaction()


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every known key, in every form, and anything shaped like a key masked.

    Args:
        text: The text to clean.
        secrets: Further keys to mask (each is also registered for later calls).

    Example:
        >>> redact("bad key sk-live-0123456789")
        'bad key sk-***'
    """
    for secret in secrets:
        register(secret)
    if _pattern is not None:
        text = _pattern.sub(MASK, text)
    return _KEY_PATTERN.sub(lambda m: f"{m.group(1)}-{MASK}", text)


class Secret:
    """Holds an API key; its repr and str never show it, and it is registered for masking."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value
        register(value)

    def get(self) -> str | None:
        """The key itself, for the SDK client."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')" if self._value else "Secret(None)"

    __str__ = __repr__


class RedactedCause(Exception):
    """Stands in for a vendor exception in a cause chain: its type, message (masked), traceback."""


def scrubbed(exc: BaseException | None, _depth: int = 0) -> RedactedCause | None:
    """A copy of ``exc`` and its causes and contexts, with every known key masked."""
    if exc is None or _depth > 20:
        return None
    kind = type(exc)
    copy = RedactedCause(redact(f"{kind.__module__}.{kind.__qualname__}: {exc}"))
    copy.__traceback__ = exc.__traceback__
    copy.__cause__ = scrubbed(exc.__cause__, _depth + 1)
    copy.__context__ = scrubbed(exc.__context__, _depth + 1)
    copy.__suppress_context__ = exc.__suppress_context__
    notes = getattr(exc, "__notes__", None)
    if notes:
        setattr(copy, "__notes__", [redact(str(note)) for note in notes])  # noqa: B010
    return copy


def _install_log_redaction() -> None:
    """Wrap the log record factory once so every record is masked as it is made."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _mask_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def _mask_record(record: logging.LogRecord) -> None:
    pattern = _pattern
    if pattern is None:
        return
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: logging reports it when it is emitted
        return
    masked = pattern.sub(MASK, message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        if pattern.search(text):
            record.exc_text = pattern.sub(MASK, text)
