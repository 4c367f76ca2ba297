"""Approval policy ("policy as code"): who may approve which GitLab deployment gate.

The policy lives in a YAML file (see ``config/approvers.example.yml``). :func:`load_policy`
reads it and either returns a validated, immutable :class:`Policy` or raises
:class:`PolicyError` listing *every* problem found, each with its line number.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from bot.identity import mapped_user
from bot.policy_checks import Found, RuleSet, check_identity_keys, check_rule_sets
from bot.policy_secrets import KEY as WEBHOOK_SECRETS_KEY
from bot.policy_secrets import WebhookKeys, WebhookSecret, read_secrets
from bot.policy_yaml import Loc, describe_value, format_loc, parse_yaml, shown_value
from bot.risk import DEFAULT_FINANCIAL_TABLES, DEFAULT_MIGRATION_PATHS

__all__ = [
    "Gate",
    "LoadedPolicy",
    "Policy",
    "PolicyError",
    "PolicyProblem",
    "Role",
    "Rule",
    "format_duration",
    "load_policy",
    "parse_duration",
    "parse_policy",
]

_DURATION_RE = re.compile(r"^[1-9][0-9]*[smhd]$")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_SLACK_ID = {
    "user": (re.compile(r"^[UW][A-Z0-9]{2,}$"), "a Slack user ID (like U0123ABCD)"),
    "usergroup": (re.compile(r"^S[A-Z0-9]{2,}$"), "a Slack user group ID (like S0123ABCD)"),
    "channel": (re.compile(r"^[CG][A-Z0-9]{2,}$"), "a Slack channel ID (like C0123ABCD)"),
}
_SLACK_ID_ERROR = "slack_id"
_POLICY_ERROR = "policy"


# --------------------------------------------------------------------------- durations


def parse_duration(text: str) -> timedelta:
    """Parse ``"90s"``, ``"15m"``, ``"24h"``, ``"7d"`` (positive integer + unit)."""
    if not isinstance(text, str) or not _DURATION_RE.match(text):
        raise ValueError(f"{text!r} is not a duration like 30m, 24h or 7d")
    try:
        return timedelta(seconds=int(text[:-1]) * _UNIT_SECONDS[text[-1]])
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def format_duration(value: timedelta) -> str:
    """Inverse of :func:`parse_duration`, using the largest unit that divides evenly."""
    seconds = int(value.total_seconds())
    for unit, size in _UNIT_SECONDS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- field types


def _slack_id(kind: str) -> BeforeValidator:
    pattern, what = _SLACK_ID[kind]

    def check(value: Any) -> Any:
        if isinstance(value, str) and pattern.match(value):
            return value
        raise PydanticCustomError(_SLACK_ID_ERROR, f"{shown_value(value)} is not {what}")

    return BeforeValidator(check)


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise PydanticCustomError(_POLICY_ERROR, "must be a positive duration")
        return value
    try:
        return parse_duration(value)
    except ValueError as exc:
        reason = f"{shown_value(value)} is not a duration like 30m, 24h or 7d"
        raise PydanticCustomError(_POLICY_ERROR, reason) from exc


def _optional_duration(value: Any) -> Any:
    return None if value is None else _duration(value)


def _version(value: Any) -> Any:
    if type(value) is not int or value != 1:
        raise PydanticCustomError(
            _POLICY_ERROR, f"unsupported version {shown_value(value)} (must be 1)"
        )
    return value


def _non_empty(what: str) -> AfterValidator:
    # not Field(min_length=1): pydantic would also call a list whose items are all
    # invalid "too short", on top of the errors about the items themselves
    def check(value: tuple[Any, ...]) -> tuple[Any, ...]:
        if not value:
            raise PydanticCustomError(_POLICY_ERROR, f"must list at least one {what}")
        return value

    return AfterValidator(check)


UserId = Annotated[str, _slack_id("user")]
UsergroupId = Annotated[str, _slack_id("usergroup")]
ChannelId = Annotated[str, _slack_id("channel")]
Name = Annotated[StrictStr, Field(min_length=1)]


# --------------------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Model):
    """``count`` distinct members of ``role`` must approve."""

    role: Name
    count: Annotated[StrictInt, Field(ge=1)]


class Role(_Model):
    """Slack users (``members``) and/or Slack user groups resolved at approval time."""

    members: tuple[UserId, ...] = ()
    usergroups: tuple[UsergroupId, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.members and not self.usergroups:
            raise PydanticCustomError(
                _POLICY_ERROR, "has neither members nor usergroups (list at least one member)"
            )
        return self


Duty = Literal["triggerer", "commit_author", "merge_request_author", "merged_by"]


class RiskWhen(_Model):
    """Facts about the change that make a risk rule apply (all stated ones must hold)."""

    # A dangerous statement in a changed migration, or migrations that could not be checked.
    migration_risk: StrictBool | None = None
    # A job of an earlier stage failed (allowed to fail or not).
    failed_jobs: StrictBool | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.migration_risk is None and self.failed_jobs is None:
            raise PydanticCustomError(
                _POLICY_ERROR, "names no condition (use migration_risk or failed_jobs)"
            )
        return self

    def holds(self, facts: Mapping[str, bool]) -> bool:
        stated = self.model_dump(exclude_none=True)
        return all(facts.get(name, False) == value for name, value in stated.items())

    def describe(self) -> str:
        stated = self.model_dump(exclude_none=True)
        return " and ".join(
            RISK_FACT_TEXT[name] if value else f"no {RISK_FACT_TEXT[name]}"
            for name, value in stated.items()
        )


RISK_FACT_TEXT: Mapping[str, str] = {
    "migration_risk": "migration risk",
    "failed_jobs": "failed earlier jobs",
}


class RiskRule(_Model):
    """More approvals when the change is risky, in addition to the gate's own rules."""

    when: RiskWhen
    require: Annotated[tuple[Rule, ...], _non_empty("rule")]


class RollbackPolicy(_Model):
    """Who may roll a played gate back from Slack, and which jobs are involved."""

    job: Name = "rollback:production"
    smoke_job: Name = "post-deploy"
    # None: one person holding any of the gate's roles.
    require: Annotated[tuple[Rule, ...], _non_empty("rule")] | None = None
    forbid_self_approval: StrictBool = True


class EvidenceSettings(_Model):
    """What the worker gathers for a request: where migrations live, which tables hold
    money, and which environment's last deployment the change is compared with."""

    environment: Name = "production"
    migration_paths: Annotated[tuple[Name, ...], _non_empty("path")] = DEFAULT_MIGRATION_PATHS
    financial_tables: tuple[Name, ...] = DEFAULT_FINANCIAL_TABLES


class Gate(_Model):
    """A manual job (``job``) in matching projects that needs approvals before it may run."""

    project: Name
    job: Name = "compliance-gate"
    channel: ChannelId
    require: Annotated[tuple[Rule, ...], _non_empty("rule")]
    forbid_self_approval: StrictBool = True
    expire_after: Annotated[timedelta, BeforeValidator(_duration)] = timedelta(hours=24)
    on_reject: Literal["cancel_pipeline", "leave"] = "cancel_pipeline"
    unknown_identity: Literal["deny", "allow"] = "deny"
    # Who may not approve; unset: triggerer and commit author when forbid_self_approval.
    separation_of_duties: tuple[Duty, ...] | None = None
    # Nudge in the request's thread, mentioning who can still approve, this often.
    remind_every: Annotated[timedelta | None, BeforeValidator(_optional_duration)] = None
    # Escalate a request still pending this long: to escalate_channel, else to the admins
    # in the request's thread.
    escalate_after: Annotated[timedelta | None, BeforeValidator(_optional_duration)] = None
    escalate_channel: ChannelId | None = None
    # Extra approvals when the change is risky (migration risk flags, failed earlier jobs).
    risk_rules: tuple[RiskRule, ...] = ()
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy)

    @property
    def duties(self) -> tuple[Duty, ...]:
        """The people behind the change who may not approve it, in effect for this gate."""
        if self.separation_of_duties is not None:
            return self.separation_of_duties
        return ("triggerer", "commit_author") if self.forbid_self_approval else ()

    def applying_risk_rules(self, facts: Mapping[str, bool]) -> list[RiskRule]:
        return [rule for rule in self.risk_rules if rule.when.holds(facts)]

    def for_change(self, facts: Mapping[str, bool]) -> Gate:
        """This gate with the extra rules the change's risk facts call for."""
        extra = tuple(r for risk in self.applying_risk_rules(facts) for r in risk.require)
        return self.model_copy(update={"require": self.require + extra}) if extra else self

    @field_serializer("expire_after", "remind_every", "escalate_after")
    def _dump_duration(self, value: timedelta | None) -> str | None:
        return None if value is None else format_duration(value)

    @property
    def expire_after_text(self) -> str:
        """``expire_after`` as policy text, e.g. ``"24h"`` → ``"1d"`` (largest exact unit)."""
        return format_duration(self.expire_after)

    def matches(self, project_path: str, job_name: str) -> bool:
        """Project glob (fnmatch, case-insensitive, ``*`` also crosses ``/``); job exact."""
        return job_name == self.job and self.matches_project(project_path)

    def matches_project(self, project_path: str) -> bool:
        return fnmatchcase(project_path.lower(), self.project.lower())


class Policy(_Model):
    version: Annotated[Literal[1], BeforeValidator(_version)]
    roles: dict[Name, Role]
    admins: tuple[UserId, ...] = ()
    identities: dict[Name, UserId] = Field(default_factory=dict)
    gates: Annotated[tuple[Gate, ...], _non_empty("gate")]
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    # Per-project webhook secrets (bot.policy_secrets); their values are not part of it.
    webhook_secrets: tuple[WebhookSecret, ...] = ()

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Self:
        if info.context and info.context.get("skip_cross_checks"):
            return self  # load_policy runs them itself, with line numbers
        found = _raw_cross_checks(self.model_dump(mode="json"))
        if found:
            raise ValueError("; ".join(f"{format_loc(loc)}: {why}" for loc, _, why in found))
        return self

    def gate_for(self, project_path: str, job_name: str) -> Gate | None:
        """The first gate matching the project and job, or ``None``."""
        return next((g for g in self.gates if g.matches(project_path, job_name)), None)

    def gates_for_project(self, project_path: str) -> list[Gate]:
        """All gates whose project pattern matches, in file order (any job)."""
        return [g for g in self.gates if g.matches_project(project_path)]

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.admins

    def static_roles_of(self, user_id: str) -> set[str]:
        """Roles listing ``user_id`` in ``members`` (user group membership is not included)."""
        return {name for name, role in self.roles.items() if user_id in role.members}

    def slack_user_for(self, gitlab_username: str) -> str | None:
        """Slack user ID mapped to a GitLab username (any case) or e-mail in ``identities``."""
        return mapped_user(self.identities, gitlab_username)


def _raw_cross_checks(data: Any) -> list[Found]:
    """Cross checks on the raw data, so they run even when other parts are invalid."""
    if not isinstance(data, dict):
        return []
    identities = data.get("identities")
    found = check_identity_keys(identities) if isinstance(identities, dict) else []
    if not isinstance(data.get("roles"), dict):
        return found
    roles: dict[str, Role | None] = {}
    for name, value in data["roles"].items():
        try:
            roles[name] = Role.model_validate(value)
        except ValidationError:
            roles[name] = None
    sets: list[RuleSet] = []
    raw_gates = data.get("gates")
    for gi, gate in enumerate(raw_gates if isinstance(raw_gates, list) else []):
        if isinstance(gate, dict):
            sets.extend(_gate_rule_sets(("gates", gi), gate))
    return found + check_rule_sets(roles, sets)


def _rules_at(where: Loc, raw: Any) -> list[tuple[Loc, str, int | None]]:
    """The readable rules of a raw `require` list (count None where it is invalid)."""
    rules: list[tuple[Loc, str, int | None]] = []
    for ri, rule in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(rule, dict) and isinstance(rule.get("role"), str):
            count = rule.get("count")
            valid = type(count) is int and count >= 1 and set(rule) <= {"role", "count"}
            rules.append(((*where, ri), rule["role"], count if valid else None))
    return rules


def _gate_rule_sets(where: Loc, gate: dict[str, Any]) -> list[RuleSet]:
    """Rules that must be met together: the base rules; the base rules plus each risk
    rule's extras (by distinct people); the rollback's own rules."""
    base_loc: Loc = (*where, "require")
    base = _rules_at(base_loc, gate.get("require"))
    sets: list[RuleSet] = [(base_loc, base)]
    risk_rules = gate.get("risk_rules")
    for k, risk in enumerate(risk_rules if isinstance(risk_rules, list) else []):
        if isinstance(risk, dict):
            extra_loc: Loc = (*where, "risk_rules", k, "require")
            sets.append((extra_loc, base + _rules_at(extra_loc, risk.get("require"))))
    rollback = gate.get("rollback")
    if isinstance(rollback, dict) and rollback.get("require") is not None:
        rollback_loc: Loc = (*where, "rollback", "require")
        sets.append((rollback_loc, _rules_at(rollback_loc, rollback["require"])))
    return sets


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class PolicyProblem:
    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.reason}"


class PolicyError(Exception):
    """The policy file is unusable; ``problems`` lists everything wrong with it."""

    def __init__(self, problems: Sequence[PolicyProblem]) -> None:
        self.problems: list[PolicyProblem] = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    version: str  # SHA-256 hex digest of the file's exact bytes
    path: Path
    # The secrets `webhook_secrets` names, read with the file (never shown).
    webhook_keys: WebhookKeys = field(default_factory=WebhookKeys)


def _model_at(loc: Loc) -> type[BaseModel]:
    """The model whose keys live at ``loc`` (to suggest the allowed ones)."""
    last = loc[-1] if loc else None
    shapes: dict[object, type[BaseModel]] = {
        "when": RiskWhen,
        "rollback": RollbackPolicy,
        "evidence": EvidenceSettings,
    }
    if len(loc) >= 2 and loc[-2] == "require":
        return Rule
    if len(loc) >= 2 and loc[-2] == "risk_rules":
        return RiskRule
    if len(loc) == 2 and loc[0] == WEBHOOK_SECRETS_KEY:
        return WebhookSecret
    if len(loc) == 2 and loc[0] in ("gates", "roles"):
        return Gate if loc[0] == "gates" else Role
    return shapes.get(last, Policy) if len(loc) > 1 or last == "evidence" else Policy


def _explain(err: ErrorDetails) -> tuple[Loc, Loc, str]:
    """Turn one pydantic error into (loc shown, loc for the line, plain-English reason)."""
    loc: Loc = tuple(err["loc"])
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    got = describe_value(value)
    if loc and loc[-1] == "[key]":  # a mapping key (role name, GitLab username) is empty
        return loc[:-2], loc[:-1], "a name must not be empty"
    if kind == "extra_forbidden":
        key, allowed = str(loc[-1]), sorted(_model_at(loc[:-1]).model_fields)
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
        return loc[:-1], loc, f"unknown key '{key}' ({hint})"
    if kind == "missing":
        return loc[:-1], loc[:-1], f"missing required key '{loc[-1]}'"
    if kind == _SLACK_ID_ERROR and loc and isinstance(loc[-1], int):
        return loc[:-1], loc, err["msg"]
    if not loc and kind in ("model_type", "model_attributes_type", "dict_type"):
        reason = f"the top level must be a mapping with version, roles and gates, not {got}"
        return loc, loc, reason
    simple = {
        "string_type": f"must be text, not {got}",
        "string_too_short": "must not be empty",
        "int_type": f"must be a whole number, not {got}",
        "bool_type": f"must be true or false, not {got}",
        "literal_error": f"must be {ctx.get('expected')}, not {got}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}, not {got}",
        "too_short": "must not be empty",
        "tuple_type": f"must be a list, not {got}",
        "list_type": f"must be a list, not {got}",
        "dict_type": f"must be a mapping (key: value lines), not {got}",
        "model_type": f"must be a mapping (key: value lines), not {got}",
        "model_attributes_type": f"must be a mapping (key: value lines), not {got}",
    }
    return loc, loc, simple.get(kind, err["msg"])


# --------------------------------------------------------------------------- loading


def parse_policy(
    raw: bytes | str,
    path: str | Path = "<string>",
    environ: Mapping[str, str] | None = None,
    read_webhook_secrets: bool = True,
) -> LoadedPolicy:
    """Validate policy text (``path`` is used in messages, as ``LoadedPolicy.path`` and as
    the directory relative ``secret_file`` paths start from). The secrets of
    ``webhook_secrets`` are read too (from ``environ``, default the process environment),
    unless ``read_webhook_secrets`` is False (commands that never need them)."""
    data = raw.encode() if isinstance(raw, str) else raw
    file = str(path)
    parsed = parse_yaml(data)
    problems = [PolicyProblem(file, line, reason) for line, reason in parsed.problems]
    policy: Policy | None = None
    keys = WebhookKeys()
    if parsed.data is not None or not problems:
        found: list[tuple[Loc, Loc, str]] = []
        try:
            policy = Policy.model_validate(parsed.data, context={"skip_cross_checks": True})
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            # skip errors about values already reported as unreadable YAML
            found.extend(_explain(e) for e in errors if not parsed.is_broken(tuple(e["loc"])))
        found.extend(_raw_cross_checks(parsed.data))
        if read_webhook_secrets and isinstance(parsed.data, dict):
            keys, unread = read_secrets(
                parsed.data.get(WEBHOOK_SECRETS_KEY), Path(path).parent, environ
            )
            found.extend((loc, loc, why) for loc, why in unread)
        for shown, line_loc, why in found:
            text = f"{format_loc(shown)}: {why}" if shown else why
            problems.append(PolicyProblem(file, parsed.line_of(line_loc), text))
    if problems or policy is None:
        unique = list(dict.fromkeys(problems))
        unique.sort(key=lambda p: -1 if p.line is None else p.line)
        raise PolicyError(unique)
    return LoadedPolicy(policy, hashlib.sha256(data).hexdigest(), Path(path), keys)


def load_policy(path: str | Path, read_webhook_secrets: bool = True) -> LoadedPolicy:
    """Read and validate the policy file; raise :class:`PolicyError` with all problems."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise PolicyError([PolicyProblem(str(path), None, "file not found")]) from None
    except OSError as exc:
        reason = f"cannot read the file: {exc.strerror or exc}"
        raise PolicyError([PolicyProblem(str(path), None, reason)]) from None
    return parse_policy(raw, path, read_webhook_secrets=read_webhook_secrets)
