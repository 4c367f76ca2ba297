"""The sandbox page: a small Flask app (HTML, a script, a JSON state endpoint, four actions).

It runs in the sandbox process on a thread. Actions accept only JSON bodies, so another
web site open in the same browser cannot drive it (a cross-site JSON POST needs CORS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, render_template, request

from bot.policy import PolicyError, load_policy
from bot.sandbox import state
from bot.sandbox.driver import Driver, PipelineRequest
from bot.sandbox.people import DEFAULT_TRIGGERER, PEOPLE, Person, person, roles_of
from bot.store.db import Database

DEFAULT_TITLE = "Add payment retries"
MAX_FIELD = 200
BAD_PERSON = "unknown person {value!r}"
BAD_FIELD = "{field} must be a non-empty string of at most 200 characters"


class BadInput(Exception):
    """A 400 answer for the page's script."""


def create_page(driver: Driver, db: Database, policy_path: Path) -> Flask:
    here = Path(__file__).parent
    app = Flask(
        __name__, static_folder=str(here / "static"), template_folder=str(here / "templates")
    )

    @app.errorhandler(BadInput)
    def bad_input(exc: BadInput) -> tuple[Response, int]:
        return jsonify(error=str(exc)), 400

    @app.get("/")
    def index() -> str:
        return render_template(
            "page.html",
            people=_people(policy_path),
            projects=_projects(policy_path),
            default_triggerer=DEFAULT_TRIGGERER,
            default_title=DEFAULT_TITLE,
            migration=hasattr(driver.gitlab, "add_commit"),
            policy_path=str(policy_path),
        )

    @app.get("/api/state")
    def current() -> Response:
        return jsonify(state.snapshot(driver, db))

    @app.post("/api/pipelines")
    def start_pipeline() -> Response:
        body = _json()
        wanted = PipelineRequest(
            project=_text(body, "project"),
            ref=_text(body, "ref"),
            triggered_by=_person(body, "triggered_by"),
            author=_person(body, "author"),
            title=_text(body, "title"),
            migration=body.get("migration") is True,
        )
        return jsonify(driver.start_pipeline(wanted))

    @app.post("/api/pipelines/<int:pipeline_id>/deploy")
    def deploy(pipeline_id: int) -> Response:
        body = _json()
        try:
            return jsonify(driver.deploy(pipeline_id, body.get("smoke") != "failed"))
        except LookupError as exc:
            raise BadInput(str(exc)) from None

    @app.post("/api/click")
    def click() -> Response:
        body = _json()
        answer = driver.click(
            _person(body, "user"),
            _text(body, "action_id"),
            _text(body, "value"),
            _text(body, "block_id"),
            _text(body, "channel"),
            _text(body, "ts"),
        )
        return jsonify(answer)

    @app.post("/api/views/<view_id>")
    def submit_view(view_id: str) -> Response:
        body = _json()
        values = body.get("values")
        if not isinstance(values, dict):
            raise BadInput(BAD_FIELD.format(field="values"))
        typed = {
            str(block): {str(a): str(v) for a, v in actions.items()}
            for block, actions in values.items()
            if isinstance(actions, dict)
        }
        return jsonify(driver.submit_view(_person(body, "user"), view_id, typed))

    @app.post("/api/views/<view_id>/close")
    def close_view(view_id: str) -> Response:
        driver.close_view(view_id)
        return jsonify(status="closed")

    return app


def _json() -> dict[str, Any]:
    body = request.get_json(silent=True)  # None unless Content-Type is application/json
    if not isinstance(body, dict):
        raise BadInput("send a JSON object (Content-Type: application/json)")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_FIELD:
        raise BadInput(BAD_FIELD.format(field=name))
    return value.strip()


def _person(body: dict[str, Any], name: str) -> Person:
    value = _text(body, name)
    found = person(value)
    if found is None:
        raise BadInput(BAD_PERSON.format(value=value))
    return found


def _people(policy_path: Path) -> list[dict[str, Any]]:
    try:
        policy = load_policy(policy_path, read_webhook_secrets=False).policy
    except PolicyError:
        policy = None
    return [
        {
            "person": p,
            "roles": ", ".join(roles_of(policy, p.slack_id)) if policy else "?",
        }
        for p in PEOPLE
    ]


def _projects(policy_path: Path) -> list[str]:
    """A concrete project path for each gate of the policy in force (globs filled in)."""
    try:
        gates = load_policy(policy_path, read_webhook_secrets=False).policy.gates
    except PolicyError:
        return []
    seen: list[str] = []
    for gate in gates:
        path = gate.project.replace("*", "demo").replace("?", "x")
        if path not in seen:
            seen.append(path)
    return seen
