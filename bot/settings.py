"""Settings, read once from the environment at startup (never at import)."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///var/approval-bot.db"
DEFAULT_CHECKPOINT_PATH = "var/ledger-checkpoints.jsonl"
DEFAULT_SPOOL_DIR = "var/spool"
FIVE_MIB = 5 * 1024 * 1024
# Settings that may instead be read from a file named by `<NAME>_FILE` (Docker and
# Kubernetes secrets); their values never appear in logs or error messages.
SECRET_SETTINGS = (
    "GITLAB_TOKEN",
    "GITLAB_WEBHOOK_SECRET",
    "GITLAB_WEBHOOK_SIGNING_KEY",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "LEDGER_HMAC_KEY",
)
# Optional settings for which an empty value means unset (`FOO=` in an env file).
OPTIONAL_SETTINGS = (
    "AUDIT_API_URL",
    "GITLAB_WEBHOOK_SIGNING_KEY",
    "LEDGER_HMAC_KEY",
    "LEDGER_AUDIT_CHANNEL",
    "SLACK_TEAM_ID",
    "SLACK_APP_ID",
    "SLACK_ENTERPRISE_ID",
    "LEDGER_CHECKPOINT_PATH",
)
SIGNING_KEY_PREFIX = "whsec_"
SLACK_ID = re.compile(r"[A-Z][A-Z0-9]{2,31}")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
REDIS_URL_NEEDS_SCHEME = "must start with redis://, rediss:// or unix:// (for example {example})"


class SettingsError(Exception):
    """One or more settings are missing or invalid; str() is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    """Every setting of the contract. Secrets are SecretStr so they never print."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    DATABASE_URL: str = DEFAULT_DATABASE_URL
    GITLAB_URL: str
    GITLAB_TOKEN: SecretStr
    GITLAB_WEBHOOK_SECRET: SecretStr
    # GitLab's webhook signing token (`whsec_<base64 key>`): when set, every webhook must
    # also carry a valid `webhook-signature` (Standard Webhooks) besides X-Gitlab-Token.
    GITLAB_WEBHOOK_SIGNING_KEY: SecretStr | None = None
    # Signs every ledger entry (HMAC-SHA256), so database access alone cannot rewrite it.
    LEDGER_HMAC_KEY: SecretStr | None = None
    # A Slack channel where the chain head is published (when it moved, at most every
    # LEDGER_PUBLISH_INTERVAL_SECONDS), so that truncating the ledger is visible outside
    # the database.
    LEDGER_AUDIT_CHANNEL: str | None = None
    LEDGER_PUBLISH_INTERVAL_SECONDS: int = Field(default=600, ge=1, le=86400)
    # The append-only file a signed checkpoint of the chain head is appended to, at least
    # every 100 records or LEDGER_CHECKPOINT_INTERVAL_SECONDS while the chain moves.
    LEDGER_CHECKPOINT_PATH: Path = Path(DEFAULT_CHECKPOINT_PATH)
    LEDGER_CHECKPOINT_INTERVAL_SECONDS: int = Field(default=300, ge=1, le=300)
    SLACK_BOT_TOKEN: SecretStr
    SLACK_SIGNING_SECRET: SecretStr
    SLACK_API_URL: str = "https://slack.com/api/"
    # When set, a Slack request from another workspace, app or Enterprise Grid org is
    # refused (401) and never counts.
    SLACK_TEAM_ID: str | None = None
    SLACK_APP_ID: str | None = None
    SLACK_ENTERPRISE_ID: str | None = None
    APPROVAL_POLICY: Path = Path("config/approvers.yml")
    MAX_BODY_BYTES: int = Field(default=FIVE_MIB, gt=0)
    AUDIT_API_URL: str | None = None
    USERGROUP_CACHE_TTL: int = Field(default=60, ge=0, le=60)
    # How long a worker's claim on a play lasts before another worker may take it over
    # (crash recovery). GitLab errors are retried for this long minus 15 s.
    PLAY_LEASE_SECONDS: int = Field(default=90, ge=45, le=3600)
    # How often the worker sweeps: closes expired requests, recovers orphaned plays,
    # re-posts lost messages, retries the audit outbox.
    SWEEP_INTERVAL_SECONDS: int = Field(default=10, ge=1, le=60)
    # How long a client may take to send a request's head, then its body, to `web`
    # (whole-request deadlines, like nginx's client_header_timeout / client_body_timeout).
    HTTP_HEADER_TIMEOUT_SECONDS: int = Field(default=10, ge=1, le=120)
    HTTP_BODY_TIMEOUT_SECONDS: int = Field(default=10, ge=1, le=120)
    # Where the edge keeps verified webhooks while Redis or the database is unreachable
    # (GitLab does not redeliver after a 5xx); drained as soon as both answer again.
    WEBHOOK_SPOOL_DIR: Path = Path(DEFAULT_SPOOL_DIR)

    @property
    def play_lease(self) -> timedelta:
        return timedelta(seconds=self.PLAY_LEASE_SECONDS)

    @property
    def play_retry_window(self) -> float:
        return float(self.PLAY_LEASE_SECONDS - 15)

    @field_validator("GITLAB_URL", "SLACK_API_URL", "AUDIT_API_URL")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        problem = redis_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator(
        "GITLAB_TOKEN", "GITLAB_WEBHOOK_SECRET", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"
    )
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("GITLAB_WEBHOOK_SECRET")
    @classmethod
    def _rotation(cls, value: SecretStr) -> SecretStr:
        if not all(part.strip() for part in value.get_secret_value().split(",")):
            raise ValueError("holds an empty value between commas (old,new during a rotation)")
        return value

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """GITLAB_WEBHOOK_SECRET's values: one, or two (old,new) during a rotation."""
        text = self.GITLAB_WEBHOOK_SECRET.get_secret_value()
        return tuple(part.strip() for part in text.split(","))

    @field_validator("SLACK_TEAM_ID", "SLACK_APP_ID", "SLACK_ENTERPRISE_ID")
    @classmethod
    def _slack_id(cls, value: str | None) -> str | None:
        if value is not None and not SLACK_ID.fullmatch(value):
            raise ValueError("must be a Slack ID: capital letters and digits, like T0123ABCD")
        return value

    @field_validator("GITLAB_WEBHOOK_SIGNING_KEY")
    @classmethod
    def _signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_signing_key(value.get_secret_value())  # raises ValueError, value not shown
        return value

    @property
    def webhook_signing_key(self) -> bytes | None:
        """The HMAC key of GitLab's webhook signatures, or None when they are not required."""
        if self.GITLAB_WEBHOOK_SIGNING_KEY is None:
            return None
        return decode_signing_key(self.GITLAB_WEBHOOK_SIGNING_KEY.get_secret_value())

    def secret_values(self) -> list[str]:
        """Every secret this process holds, for log redaction (never to be shown)."""
        values = [
            secret.get_secret_value()
            for secret in (
                self.GITLAB_TOKEN,
                self.GITLAB_WEBHOOK_SECRET,
                self.GITLAB_WEBHOOK_SIGNING_KEY,
                self.SLACK_BOT_TOKEN,
                self.SLACK_SIGNING_SECRET,
                self.LEDGER_HMAC_KEY,
            )
            if secret is not None
        ]
        values += self.webhook_secrets  # each value of a rotation on its own
        key = self.GITLAB_WEBHOOK_SIGNING_KEY
        if key is not None:  # also the bare base64 part of `whsec_…`
            values.append(key.get_secret_value().removeprefix(SIGNING_KEY_PREFIX))
        for url in (self.REDIS_URL, self.DATABASE_URL):
            password = url_password(url)
            if password:
                values += [password, unquote(password)]
        return values

    @property
    def gitlab_api_url(self) -> str:
        return self.GITLAB_URL.rstrip("/") + "/api/v4"

    @property
    def slack_api_url(self) -> str:
        # slack_sdk joins base_url and the method name, so the slash matters.
        return self.SLACK_API_URL if self.SLACK_API_URL.endswith("/") else self.SLACK_API_URL + "/"

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL; a relative SQLite path resolves against the working directory."""
        return self.DATABASE_URL


def decode_signing_key(text: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: base64 after an optional `whsec_`."""
    encoded = text.strip().removeprefix(SIGNING_KEY_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ValueError(
            "must be the webhook's signing token: whsec_ followed by a base64-encoded key"
        )
    return key


def redis_url_problem(url: str) -> str | None:
    """Why `url` is not a Redis URL redis-py accepts (a missing scheme), else None."""
    if url.startswith(REDIS_SCHEMES):
        return None
    where = url.split("://", 1)[-1].rsplit("@", 1)[-1] or "127.0.0.1:6379"  # no password
    example = f"redis://{where}" if "/" in where else f"redis://{where}/0"
    return REDIS_URL_NEEDS_SCHEME.format(example=example)


def url_password(url: str) -> str | None:
    """The password in a URL's user info (`scheme://user:password@host`), if any."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return password or None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment, turning validation errors into plain lines.

    Each secret may instead come from the file named by `<NAME>_FILE` (one trailing newline
    stripped); setting both, or naming a file that cannot be read, is a problem.
    """
    env = dict(os.environ if environ is None else environ)
    known = {name: env[name] for name in Settings.model_fields if name in env}
    # An empty optional value means "unset", as operators expect from `FOO=` in an env file.
    for optional in OPTIONAL_SETTINGS:
        if known.get(optional) == "":
            known.pop(optional)
    problems, sources, failed = _read_secret_files(env, known)
    try:
        settings = Settings(**known)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems += _describe(exc, sources, failed)
        raise SettingsError(problems) from None
    if problems:
        raise SettingsError(problems)
    return settings


def _read_secret_files(
    env: Mapping[str, str], known: dict[str, str]
) -> tuple[list[str], dict[str, str], set[str]]:
    """Fill `known` from `<NAME>_FILE` secrets: (problems, name -> where it came from, names
    whose file failed)."""
    problems: list[str] = []
    sources: dict[str, str] = {}
    failed: set[str] = set()
    for name in SECRET_SETTINGS:
        variable = f"{name}_FILE"
        path = env.get(variable, "")
        if not path:
            continue
        if env.get(name, ""):
            problems.append(f"both {name} and {variable} are set; set only one of them")
            failed.add(name)
            known.pop(name, None)
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            problems.append(f"cannot read {variable} file {path}: {reason}")
            failed.add(name)
            continue
        except UnicodeDecodeError:
            problems.append(f"cannot read {variable} file {path}: not UTF-8 text")
            failed.add(name)
            continue
        known[name] = text.rstrip("\r\n")
        sources[name] = f"{variable} file {path}"
    return problems, sources, failed


def _describe(
    exc: ValidationError, sources: Mapping[str, str] | None = None, skip: set[str] | None = None
) -> list[str]:
    sources = sources or {}
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        if name in (skip or ()):
            continue  # its _FILE problem is already reported
        if error["type"] == "missing":
            problems.append(f"missing required setting {name}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            where = f" (from {sources[name]})" if name in sources else ""
            problems.append(f"invalid setting {name}{where}: {message}")
    return problems
