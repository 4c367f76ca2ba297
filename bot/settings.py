"""Settings, read once from the environment at startup (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///var/approval-bot.db"
FIVE_MIB = 5 * 1024 * 1024


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
    SLACK_BOT_TOKEN: SecretStr
    SLACK_SIGNING_SECRET: SecretStr
    SLACK_API_URL: str = "https://slack.com/api/"
    APPROVAL_POLICY: Path = Path("config/approvers.yml")
    MAX_BODY_BYTES: int = Field(default=FIVE_MIB, gt=0)
    AUDIT_API_URL: str | None = None
    USERGROUP_CACHE_TTL: int = Field(default=60, ge=0, le=60)
    # How long a worker's claim on a play lasts before another worker may take it over
    # (crash recovery). GitLab errors are retried for this long minus 15 s.
    PLAY_LEASE_SECONDS: int = Field(default=90, ge=45, le=3600)

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

    @field_validator(
        "GITLAB_TOKEN", "GITLAB_WEBHOOK_SECRET", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"
    )
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

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


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment, turning validation errors into plain lines."""
    env = dict(os.environ if environ is None else environ)
    known = {name: env[name] for name in Settings.model_fields if name in env}
    # An empty optional value means "unset", as operators expect from `FOO=` in an env file.
    for optional in ("AUDIT_API_URL",):
        if known.get(optional) == "":
            known.pop(optional)
    try:
        return Settings(**known)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        if error["type"] == "missing":
            problems.append(f"missing required setting {name}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"invalid setting {name}: {message}")
    return problems
