"""Structured JSON logs (structlog over the standard library), secrets never included.

Every line is one JSON object on stderr. Lines logged while handling an HTTP request or
running a job carry its `request_id` (structlog contextvars, bound by the web edge and the
worker). Before rendering, every string in the event (the message, formatted exception
tracebacks, extra keys) goes through `redact`: the secret values registered at startup
(`register_secrets`) and anything shaped like a token are replaced by `[REDACTED]`.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable
from typing import Any

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

QUIET = ("urllib3", "slack_sdk", "gitlab", "alembic")
REDACTED = "[REDACTED]"
# Shorter registered values are not redacted: replacing every "abc" would garble the logs,
# and such a value is no secret anyway.
MIN_SECRET_LENGTH = 4

# Token shapes redacted wherever they appear, registered or not.
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Slack tokens: bot, user, app-level, refresh, configuration ...
    (re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+"), REDACTED),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), REDACTED),
    # GitLab tokens: personal, deploy, trigger, runner, OAuth, CI job, feed ...
    (
        re.compile(
            r"\bgl(?:pat|dt|ptt|rt|oas|cbt|soat|ffct|agent|imt|ft|wt|rtr|sa)-[A-Za-z0-9_.-]+"
        ),
        REDACTED,
    ),
    # Standard Webhooks signing secrets (GitLab's webhook signing token).
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), REDACTED),
    # Authorization header values.
    (re.compile(r"\b(Bearer)(\s+)(?!\[REDACTED\])[A-Za-z0-9._~+/=-]+"), r"\1\2" + REDACTED),
    # Secret-carrying headers and parameters written as `name: value` or `name=value`.
    (
        re.compile(
            r"(?i)\b(private-token|x-gitlab-token|job-token|authorization|password|passwd|"
            r"secret|api[_-]?key|access[_-]?token|client[_-]?secret)"
            r"([\"']?\s*[:=]\s*[\"']?)(?!Bearer\b|\[REDACTED\])([^\s\"',;&}]+)"
        ),
        r"\1\2" + REDACTED,
    ),
    # Passwords in URLs: scheme://user:password@host, redis://:password@host.
    (
        re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@\"']*):([^\s/@\"']+)@"),
        r"\1:" + REDACTED + "@",
    ),
)

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register_secrets(values: Iterable[str | None]) -> None:
    """Add secret values (tokens, signing secrets, passwords) to redact from every line."""
    global _secrets  # noqa: PLW0603 - one set per process, read by every log call
    with _lock:
        known = set(_secrets)
        known.update(v for v in values if v and len(v) >= MIN_SECRET_LENGTH)
        # Longest first, so a secret containing another is replaced whole.
        _secrets = tuple(sorted(known, key=len, reverse=True))


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    global _secrets  # noqa: PLW0603
    with _lock:
        _secrets = ()


def redact(text: str) -> str:
    """`text` with every registered secret and token-shaped string replaced."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact(value)
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {key: _redact_value(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(item, depth + 1) for item in value)
    if isinstance(value, bytes | bytearray):
        return redact(bytes(value).decode("utf-8", "replace"))
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else is rendered with str() or repr() by the JSON renderer: redact that text.
    return redact(str(value))


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: redact every value of the event (run after exceptions are
    formatted, right before rendering)."""
    for key, value in list(event_dict.items()):
        if key.startswith("_"):  # ProcessorFormatter's _record and _from_structlog
            continue
        event_dict[key] = _redact_value(value)
    return event_dict


def _pre_chain() -> list[Processor]:
    """Added to every event, from structlog or from the standard library's loggers."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure(level: str = "INFO", json: bool = True) -> None:
    renderer: Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        foreign_pre_chain=_pre_chain(),
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Client libraries log request details (headers included) at DEBUG: keep them quieter.
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # structlog.get_logger() goes through the same handler, formatter and redaction.
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_pre_chain(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def bind_request_id(request_id: str, **extra: Any) -> None:
    """Start a fresh log context (a request, a job) naming `request_id`."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id, **extra)


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def clear_request_id() -> None:
    structlog.contextvars.clear_contextvars()
