"""The app under fuzz and what every answer must satisfy (docs/openapi.yaml).

`build_app` builds the real Flask app as `approval-bot web` does (settings → runtime →
create_app); `Edge` wraps its test client, counts requests and checks every answer
against the OpenAPI document.
"""

from __future__ import annotations

import copy
import io
import json
import re
import time
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, validators
from redis import Redis
from werkzeug.test import TestResponse

from bot.runtime import Runtime, build_runtime
from bot.settings import load_settings
from bot.web.app import create_app
from tests.conftest import redis_db_url

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
POLICY_PATH = ROOT / "tests" / "fixtures" / "approvers.yml"
PIPELINE_HOOK_PATH = ROOT / "tests" / "fixtures" / "pipeline_hook.json"

REDIS_URL = redis_db_url(8)  # this suite's own Redis database, and no other
REDIS_DB = int(REDIS_URL.rsplit("/", 1)[1])  # 8, or this xdist worker's copy of it
WEBHOOK_SECRET = "gitlab-webhook-secret-for-fuzz"
SIGNING_SECRET = "slack-signing-secret-for-fuzz"
SLACK_TOKEN = "xoxb-test-token"
GITLAB_TOKEN = "glpat-test"
MAX_BODY_BYTES = 65536
QUEUE_KEY = "rq:queue:approval-bot"

# The Slack methods the edge itself may call: user group members (roles of a clicker or of
# a /approvals user) and views.open (the reject modal). Everything else is the worker's.
EDGE_SLACK_METHODS = frozenset({"usergroups.users.list", "views.open"})
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "', "<!doctype html", "<html")

# Bugs the fuzzing found, all fixed and kept as regression tests in test_known_bugs.py:
# JSON nested past the recursion limit; non-ASCII digits in a Slack timestamp; a reject
# click with an unencodable request id; a chunked body of exactly the limit; gate events
# with ids or strings the store cannot keep.
# Nesting of generated values: json.dumps itself recurses, so deeper documents are written
# as raw bytes (test_deeply_nested_json).
MAX_ENCODED_DEPTH = 200


def settings_env(tmp: Path, gitlab_url: str, slack_api_url: str) -> dict[str, str]:
    return {
        "GITLAB_URL": gitlab_url,
        "GITLAB_TOKEN": GITLAB_TOKEN,
        "GITLAB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url,
        "DATABASE_URL": f"sqlite:///{tmp}/approvals.db",
        "REDIS_URL": REDIS_URL,
        "APPROVAL_POLICY": str(POLICY_PATH),
        "MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "USERGROUP_CACHE_TTL": "60",
    }


def build_app(env: dict[str, str]) -> tuple[Flask, Runtime]:
    """The real app, built as `approval-bot web` builds it (no migration here)."""
    runtime = build_runtime(load_settings(env))
    return create_app(runtime), runtime


# --------------------------------------------------------------------------- the spec


@cache
def spec() -> dict[str, Any]:
    loaded = yaml.safe_load(SPEC_PATH.read_text())
    assert isinstance(loaded, dict)
    return loaded


def inlined(node: Any) -> Any:
    """`node` with every $ref replaced by what it points to (the spec has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return inlined(resolve(node["$ref"]))
        return {key: inlined(value) for key, value in node.items()}
    if isinstance(node, list):
        return [inlined(value) for value in node]
    return node


# JSON Schema counts 5.0 as an integer; the spec's ids are JSON integers as GitLab writes
# them (no fraction), and the edge reads them strictly: so does this validator.
StrictIntegers = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


@cache
def validator(pointer: str) -> Draft202012Validator:
    """A JSON Schema validator for the schema at `pointer` ('#/components/schemas/X')."""
    return StrictIntegers(inlined(resolve(pointer)))


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def response_pointer(path: str, method: str, status: int) -> str | None:
    """Pointer to the JSON schema documented for this answer, None if it has no JSON body.

    Raises KeyError when the status is not documented at all. The app under fuzz must
    answer a status its operation lists; the `4XX`/`5XX` ranges are the server's own
    refusals, which never come from the app.
    """
    responses = spec()["paths"][path][method.lower()]["responses"]
    answer = responses[str(status)]
    base = f"#/paths/{_escape(path)}/{method.lower()}/responses/{status}"
    if "$ref" in answer:
        base = answer["$ref"]
        answer = resolve(base)
    if "application/json" not in answer.get("content", {}):
        return None
    return f"{base}/content/application~1json/schema"


def resolve(pointer: str) -> Any:
    node: Any = spec()
    for raw in pointer.removeprefix("#/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def schema_errors(pointer: str, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator(pointer).iter_errors(instance)
    ]


def spec_valid(pointer: str, instance: Any) -> bool:
    return bool(validator(pointer).is_valid(instance))


@cache
def request_id_pattern() -> re.Pattern[str]:
    return re.compile(resolve("#/components/headers/RequestId/schema/pattern"))


def spec_describes(pointer: str, path: tuple[str | int, ...]) -> bool:
    """Does the request schema at `pointer` name the field at `path` (i.e. the bot reads it)?"""
    schema = resolve(pointer)
    for part in path:
        schema = _deref(schema)
        if isinstance(part, int):
            if "items" not in schema:
                return False
            schema = schema["items"]
            continue
        properties = schema.get("properties", {})
        if part not in properties:
            return False
        schema = properties[part]
    return True


def _deref(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = resolve(schema["$ref"])
    return schema


# --------------------------------------------------------------------------- the edge


class EdgeFailure(AssertionError):
    pass


class Edge:
    """The app under test plus everything needed to check its answers.

    A plain class, not a dataclass: hypothesis prints a dataclass field by field in every
    failure report, and this one holds the whole runtime.
    """

    def __init__(
        self,
        app: Flask,
        runtime: Runtime,
        client: FlaskClient,
        redis: Redis,
        gitlab: Any,
        slack: Any,
    ) -> None:
        self.app, self.runtime, self.client, self.redis = app, runtime, client, redis
        self.gitlab, self.slack = gitlab, slack
        self.known_request_ids: dict[str, str] = {}
        self.requests = 0
        self.started = time.monotonic()
        self.per_test: dict[str, tuple[int, float]] = {}
        self._nonce = 0

    def __repr__(self) -> str:
        return f"Edge(requests={self.requests})"

    def nonce(self) -> str:
        """A value never used before in this session (keeps signed bodies distinct)."""
        self._nonce += 1
        return f"{time.time_ns()}-{self._nonce}"

    # -- sending ------------------------------------------------------------------
    def post(
        self, path: str, body: bytes, headers: dict[str, str], *, chunked: bool = False, **kw: Any
    ) -> TestResponse:
        self.requests += 1
        if chunked:  # no Content-Length: the server only learns the size by reading
            return self.client.post(
                path,
                input_stream=io.BytesIO(body),
                headers={**headers, "Transfer-Encoding": "chunked"},
                environ_overrides={"wsgi.input_terminated": True},
                **kw,
            )
        return self.client.post(path, data=body, headers=headers, **kw)

    def get(self, path: str) -> TestResponse:
        self.requests += 1
        return self.client.get(path)

    # -- state of the world -------------------------------------------------------
    def reset_redis(self) -> None:
        """Forget gate claims, deliveries, replays and queued jobs (the suite's DB only)."""
        assert self.redis.connection_pool.connection_kwargs.get("db") == REDIS_DB
        self.redis.flushdb()

    def queue_length(self) -> int:
        return int(self.redis.llen(QUEUE_KEY))

    def snapshot(self) -> tuple[int, int, int, int]:
        """(Redis keys, queued jobs, Slack calls, GitLab calls), in one Redis round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.dbsize()
        pipe.llen(QUEUE_KEY)
        keys, queued = pipe.execute()
        return int(keys), int(queued), len(self.slack.calls), len(self.gitlab.calls)

    def outside_calls_ok(self) -> None:
        assert not self.gitlab.calls, f"the edge called GitLab: {self.gitlab.calls[:3]}"
        assert not self.slack.unexpected, f"unexpected Slack calls: {self.slack.unexpected[:3]}"
        methods = {c.method for c in self.slack.calls}
        assert methods <= EDGE_SLACK_METHODS, f"the edge called Slack {methods}"
        assert not self.gitlab.server_errors
        assert not self.slack.server_errors

    # -- the properties every answer has -------------------------------------------
    def check(self, path: str, method: str, response: TestResponse, sent: Any = None) -> Any:
        """Never 5xx (Redis is up), documented status, JSON error bodies, no traceback.

        Returns the decoded JSON body (None for an empty or non-JSON body).
        """
        status = response.status_code
        raw = response.get_data()
        text = raw.decode("utf-8", "replace")

        def fail(why: str) -> EdgeFailure:
            shown = sent if not isinstance(sent, bytes | str) or len(sent) < 2000 else sent[:2000]
            return EdgeFailure(f"{method} {path} → {status} {text[:500]!r}: {why}\nsent: {shown!r}")

        if status >= 500:
            raise fail("server error")
        echoed = sent.decode("utf-8", "replace") if isinstance(sent, bytes) else str(sent)
        for marker in TRACEBACK_MARKERS:
            if marker in text and marker not in echoed:  # answers may quote the input
                raise fail(f"traceback or HTML in the body ({marker!r})")
        try:
            pointer = response_pointer(path, method, status)
        except KeyError:
            raise fail("status not documented in docs/openapi.yaml") from None
        request_id = response.headers.get("X-Request-Id")
        if request_id is not None and not request_id_pattern().match(request_id):
            raise fail(f"X-Request-Id {request_id!r} does not match the spec's pattern")
        if pointer is None:
            return None
        if not raw and status == 200 and path == "/slack/interactions":
            return None  # acknowledged with an empty body, as the spec says
        if response.mimetype != "application/json":
            raise fail(f"expected JSON, got {response.mimetype}")
        try:
            body = json.loads(raw)
        except ValueError:
            raise fail("body is not JSON") from None
        problems = _validated(pointer, raw, body)
        if problems:
            raise fail(f"body does not match {pointer}: {problems[:3]}")
        if status >= 400 and not isinstance(body.get("error"), str):
            raise fail("4xx without an error")
        return body


_VALIDATED: dict[tuple[str, bytes], list[str]] = {}


def _validated(pointer: str, raw: bytes, body: Any) -> list[str]:
    """schema_errors, remembered per distinct body (most answers repeat, a 401 always does)."""
    key = (pointer, raw)
    if key not in _VALIDATED:
        if len(_VALIDATED) > 50_000:
            _VALIDATED.clear()
        _VALIDATED[key] = schema_errors(pointer, body)
    return _VALIDATED[key]


# --------------------------------------------------------------------------- JSON paths


JsonPath = tuple[str | int, ...]


def json_paths(doc: Any) -> list[JsonPath]:
    """Every path in a JSON document, in document order (a container before its children)."""
    paths: list[JsonPath] = []
    stack: list[tuple[JsonPath, Any]] = [((), doc)]
    while stack:
        prefix, node = stack.pop()
        if isinstance(node, dict):
            children = [((*prefix, key), value) for key, value in node.items()]
        elif isinstance(node, list):
            children = [((*prefix, index), value) for index, value in enumerate(node)]
        else:
            continue
        for path, _value in children:
            paths.append(path)
        stack.extend(reversed(children))
    return paths


def get_at(doc: Any, path: JsonPath) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def deleted(doc: Any, path: JsonPath) -> Any:
    out = copy.deepcopy(doc)
    parent = get_at(out, path[:-1])
    del parent[path[-1]]
    return out


def replaced(doc: Any, path: JsonPath, value: Any) -> Any:
    if not path:
        return copy.deepcopy(value)
    out = copy.deepcopy(doc)
    get_at(out, path[:-1])[path[-1]] = copy.deepcopy(value)
    return out


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_surrogate(v) for v in value)
    return False


# --------------------------------------------------------------------------- bug guards


def hits_surrogate_request_id(payload: Any) -> bool:
    """Known bug 'surrogate-request-id': a reject click whose request id cannot be encoded."""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return False
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return False
    first = actions[0]
    return first.get("action_id") == "reject" and has_surrogate(first.get("value"))


def storable(value: Any, key: str = "") -> bool:
    """What the webhook's description adds to the schema: no NUL or lone surrogate in any
    string, names at most 255 characters (commit texts excepted)."""
    if isinstance(value, dict):
        return all(storable(v, k) for k, v in value.items())
    if isinstance(value, list):
        return all(storable(v, key) for v in value)
    if isinstance(value, str):
        if "\x00" in value or len(value) > (100_000 if key in ("title", "message") else 255):
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True
