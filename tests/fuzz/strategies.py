"""Hypothesis strategies for the edge: JSON values, spec-valid bodies, mutations, headers."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

from bot.simulators.gitlab_events import build, job_event, pipeline_event
from bot.simulators.slack_signing import (
    block_actions_payload,
    slash_command_body,
    view_submission_payload,
)
from tests.fuzz import edge as E

# ----------------------------------------------------------------------------- scalars

GITLAB_STATUSES = [
    "created",
    "waiting_for_resource",
    "preparing",
    "pending",
    "running",
    "manual",
    "scheduled",
    "success",
    "failed",
    "canceled",
    "skipped",
]
INTERESTING_TEXT = [
    "",
    " ",
    "manual",
    "MANUAL",
    "pipeline",
    "compliance-gate",
    "fintech/payments-api",
    "fintech/ledger-core",
    "[REDACTED]",
    "\x00",
    "\u202e\u0645",
    "\U0001f680" * 3,
    "a" * 5000,
    "../../../etc/passwd",
    "%00%ff",
    "<script>alert(1)</script>",
    "'; DROP TABLE approval_requests; --",
    "{}",
    "null",
    "\r\n",
]
INTERESTING_INTS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 10**40]

# Text without surrogates (st.text's default) and text that may hold lone surrogates,
# which JSON can carry as "\ud800" escapes.
plain_text = st.text(max_size=40)
wild_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.sampled_from(INTERESTING_TEXT),
)
any_int = st.one_of(st.sampled_from(INTERESTING_INTS), st.integers())
in_range_id = st.integers(min_value=1, max_value=2**63 - 1)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    any_int,
    st.floats(allow_nan=True, allow_infinity=True),
    wild_text,
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5), st.dictionaries(wild_text, inner, max_size=5)
        ),
        max_leaves=max_leaves,
    )


@st.composite
def nested_garbage(draw: st.DrawFn) -> Any:
    """A value nested up to MAX_ENCODED_DEPTH levels."""
    levels = draw(st.sampled_from([1, 2, 5, 20, 100, E.MAX_ENCODED_DEPTH - 20]))
    shape = draw(st.sampled_from(["list", "object", "mixed"]))
    value: Any = draw(scalars)
    for level in range(levels):
        as_list = shape == "list" or (shape == "mixed" and level % 2 == 0)
        value = [value] if as_list else {"x": value}
    return value


@st.composite
def deep_json_bodies(draw: st.DrawFn, limit: int) -> bytes:
    """JSON (or JSON-like) text nested up to tens of thousands of levels, within `limit`."""
    shape = draw(st.sampled_from(["open-arrays", "arrays", "objects", "mixed"]))
    unit = {"open-arrays": 1, "arrays": 2, "objects": 6, "mixed": 8}[shape]
    levels = draw(st.integers(1, (limit - 60) // unit))
    if shape == "open-arrays":
        inner = b"[" * levels
    elif shape == "arrays":
        inner = b"[" * levels + b"]" * levels
    elif shape == "objects":
        inner = b'{"a":' * levels + b"1" + b"}" * levels
    else:
        inner = b'[{"a":' * (levels // 2) + b"null" + b"}]" * (levels // 2)
    kind = draw(st.sampled_from([None, "pipeline", "build", "push"]))
    if kind is None:
        return inner
    return b'{"object_kind": "' + kind.encode() + b'", "builds": ' + inner + b"}"


replacement = st.one_of(scalars, scalars, json_values(4), nested_garbage())


# ----------------------------------------------------------------------------- mutations


@st.composite
def mutated(draw: st.DrawFn, doc: Any, max_mutations: int = 5) -> Any:
    """`doc` with a few random deletions, replacements, wrappings and duplications."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(0, max_mutations))):
        paths = list(E.json_paths(doc))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        operation = draw(st.sampled_from(["delete", "replace", "replace", "wrap", "duplicate"]))
        parent = E.get_at(doc, path[:-1])
        if operation == "delete":
            del parent[path[-1]]
        elif operation == "replace":
            parent[path[-1]] = draw(replacement)
        elif operation == "wrap":
            value = parent[path[-1]]
            parent[path[-1]] = draw(st.sampled_from([[value], {"value": value}, str(value)]))
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
        else:
            parent[draw(wild_text)] = copy.deepcopy(parent[path[-1]])
    return doc


# ----------------------------------------------------------------------------- GitLab


@cache
def _pipeline_bases() -> list[dict[str, Any]]:
    """Real Pipeline Hooks: every pipeline and gate status, gated or not, some with a second
    gate build (built once; hypothesis picks one and mutates it)."""
    second_gate = [build(9002, "compliance-gate", "approve", "manual", when="manual")]
    return [
        pipeline_event(
            project_path=path,
            status=status,
            gate_status=gate_status,
            gate_name=gate_name,
            extra_builds=second_gate if index % 3 == 0 else None,
        )
        for path, gate_name in [
            ("fintech/payments-api", "compliance-gate"),
            ("fintech/ledger-core", "compliance-gate"),
            ("FINTECH/Ledger-x/y", "compliance-gate"),
            ("fintech/payments-api", "deploy"),
            ("other/project", "compliance-gate"),
        ]
        for index, (status, gate_status) in enumerate(
            (s, g) for s in GITLAB_STATUSES for g in GITLAB_STATUSES
        )
    ]


@cache
def _job_bases() -> list[dict[str, Any]]:
    """Real Job Hooks: the gate job (or another job) in every job and pipeline status."""
    return [
        job_event(project_path=path, job_name=name, status=status, pipeline_status=pipeline)
        for path, name in [
            ("fintech/payments-api", "compliance-gate"),
            ("fintech/ledger-x", "compliance-gate"),
            ("fintech/payments-api", "deploy"),
            ("a/b", "compliance-gate"),
        ]
        for status in GITLAB_STATUSES
        for pipeline in GITLAB_STATUSES
    ]


def pipeline_events() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(_pipeline_bases())


def job_events() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(_job_bases())


def webhook_objects() -> st.SearchStrategy[Any]:
    """Objects with an `object_kind` of any type, plus other GitLab event kinds."""
    kinds = st.one_of(
        st.sampled_from(["pipeline", "push", "build", "merge_request", "note", "Pipeline"]),
        wild_text,
        scalars,
    )
    return st.one_of(
        st.builds(
            lambda kind, rest: {**rest, "object_kind": kind},
            kinds,
            st.dictionaries(
                st.one_of(st.sampled_from(["object_attributes", "project", "builds"]), wild_text),
                json_values(4),
                max_size=4,
            ),
        ),
        st.builds(job_event, status=st.sampled_from(GITLAB_STATUSES)),
    )


def to_json(value: Any) -> bytes:
    return json.dumps(value).encode()


wrong_tokens = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "",
            E.WEBHOOK_SECRET.upper(),
            E.WEBHOOK_SECRET[:-1],
            E.WEBHOOK_SECRET + " ",
            " " + E.WEBHOOK_SECRET,
            E.WEBHOOK_SECRET + "\t",
            E.WEBHOOK_SECRET + E.WEBHOOK_SECRET,
            "Bearer " + E.WEBHOOK_SECRET,
            E.SIGNING_SECRET,
        ]
    ),
    # A header value as a server sees it: Latin-1, no CR/LF.
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60),
).filter(lambda token: token != E.WEBHOOK_SECRET)

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)
# What str.isdigit() accepts in a Latin-1 header: ASCII digits and the superscripts.
digits_text = st.text(st.sampled_from("0123456789\u00b9\u00b2\u00b3"), min_size=1, max_size=12)


# ----------------------------------------------------------------------------- Slack

SLACK_USERS = [
    "U0RM00001",
    "U0RM00002",
    "U0CO00001",
    "U0ADMIN01",
    "U0DEV0001",
    "U0BOB0001",
    "U0GROUP01",
    "U0OUTSIDE",
]


WEIRD_USER_IDS = ["", "u0rm00001", "U" * 40, "W0123", "\u00dc0RM00001"]
WEIRD_REQUEST_IDS = ["", "0" * 32, "x" * 10_000, "' OR 1=1 --", "\U0001f680", "%00", "\ud800"]


@cache
def _interaction_bases(known: tuple[str, ...]) -> list[dict[str, Any]]:
    """Clicks and submissions as Slack sends them: every user (of the policy and not) on
    every request (known or not), built once; hypothesis picks one and mutates it."""
    users = SLACK_USERS + WEIRD_USER_IDS
    ids = list(known) + WEIRD_REQUEST_IDS
    clicks = [
        block_actions_payload(user, action, request_id, trigger_id=trigger)
        for user in users
        for request_id in ids
        for action, trigger in [
            ("approve", "1.2.abc"),
            ("reject", "1.2.abc"),
            ("reject", ""),
            ("unknown", "1.2.abc"),
            ("", "1.2.abc"),
        ]
    ]
    submissions = [
        view_submission_payload(user, request_id, reason, callback_id=callback)
        for user in users
        for request_id in ids
        for reason, callback in [
            ("because", "reject_reason"),
            ("", "reject_reason"),
            ("   ", "reject_reason"),
            ("because", "other"),
            ("because", ""),
        ]
    ]
    others = [
        {"type": kind, "user": {"id": user}}
        for user in users
        for kind in ["message_action", "shortcut", "view_closed", "", "BLOCK_ACTIONS"]
    ]
    return clicks + submissions + others


@st.composite
def interaction_payloads(draw: st.DrawFn, known: list[str]) -> Any:
    """block_actions / view_submission (and other) payloads as Slack sends them, mutated."""
    base = draw(st.sampled_from(_interaction_bases(tuple(known))))
    return draw(mutated(base, max_mutations=draw(st.sampled_from([0, 0, 1, 2, 4]))))


@st.composite
def interaction_bodies(draw: st.DrawFn, known: list[str]) -> tuple[bytes, Any]:
    """A form body and the payload it carries (None when it carries no JSON object)."""
    shape = draw(st.sampled_from(["payload"] * 6 + ["raw-payload", "form", "bytes"]))
    if shape == "payload":
        payload = draw(interaction_payloads(known))
        return urlencode({"payload": json.dumps(payload)}).encode(), payload
    if shape == "raw-payload":
        return urlencode({"payload": draw(wild_text.map(_encodable))}).encode(), None
    if shape == "form":
        fields = draw(st.dictionaries(plain_text, plain_text, max_size=5))
        return urlencode(fields).encode(), None
    return draw(st.binary(max_size=300)), None


def _encodable(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@st.composite
def command_bodies(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["slack"] * 4 + ["fields", "bytes"]))
    if shape == "slack":
        return slash_command_body(
            draw(st.one_of(st.sampled_from(SLACK_USERS), plain_text)),
            draw(
                st.one_of(
                    st.sampled_from(["", "help", "whoami", "pending", " PENDING  now", "policy"]),
                    plain_text,
                )
            ),
        )
    if shape == "fields":
        keys = st.one_of(st.sampled_from(["user_id", "text", "command", "team_id"]), plain_text)
        fields = draw(st.dictionaries(keys, plain_text, max_size=6))
        return urlencode(fields).encode()
    return draw(st.binary(max_size=300))


# ----------------------------------------------------------------------------- the spec


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid against a (small subset of) JSON Schema, as used in docs/openapi.yaml."""
    if "$ref" in schema:
        return from_schema(E.resolve(schema["$ref"]))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "oneOf" in schema or "anyOf" in schema:
        return st.one_of([from_schema(option) for option in schema.get("oneOf") or schema["anyOf"]])
    types = schema.get("type", "object")
    if isinstance(types, list):
        return st.one_of([from_schema({**schema, "type": kind}) for kind in types])
    if types == "null":
        return st.none()
    if types == "boolean":
        return st.booleans()
    if types == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if types == "string":
        forbidden = schema.get("not", {})
        excluded = [forbidden["const"]] if "const" in forbidden else forbidden.get("enum", [])
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda value: (
                    schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**6)
                )
            )
        # The bot refuses NUL characters in webhook strings (the store cannot keep them).
        text = st.text(
            alphabet=st.characters(blacklist_characters="\x00"),
            min_size=schema.get("minLength", 0),
            max_size=schema.get("maxLength", 12),
        )
        return text.filter(lambda value: value not in excluded) if excluded else text
    if types == "array":
        low = schema.get("minItems", 0)
        return st.lists(from_schema(schema.get("items", {})), min_size=low, max_size=low + 2)
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {name: from_schema(sub) for name, sub in properties.items() if name in required},
        optional={
            name: from_schema(sub) for name, sub in properties.items() if name not in required
        },
    )


@cache
def spec_schema(pointer: str) -> st.SearchStrategy[Any]:
    return from_schema(E.resolve(pointer))


@st.composite
def spec_valid_webhooks(draw: st.DrawFn) -> Any:
    """Spec-valid webhook bodies, half of them moved onto a gate of the test policy."""
    event = draw(spec_schema("#/components/schemas/WebhookEvent"))
    kind = event.get("object_kind")
    if kind in ("pipeline", "build") and draw(st.booleans()):
        if "project" in event:  # a Job Hook of older GitLab has none
            event["project"]["path_with_namespace"] = draw(
                st.sampled_from(["fintech/payments-api", "fintech/ledger-core"])
            )
        if kind == "build":
            event["build_name"] = "compliance-gate"
            event["build_status"] = draw(st.sampled_from(GITLAB_STATUSES))
        else:
            status = draw(st.sampled_from(GITLAB_STATUSES))
            gate = {"id": draw(in_range_id), "name": "compliance-gate", "status": status}
            event["builds"] = [*event.get("builds", []), gate]
    return event
