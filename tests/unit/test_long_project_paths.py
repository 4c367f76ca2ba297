"""GitLab nests groups 20 deep, each path up to 255 characters: the bot takes and keeps the
longest full path GitLab can send (issue #14 item 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.events import BadEvent, parse_pipeline
from bot.store import requests as store
from bot.store.db import Database
from bot.store.limits import FULL_PATH_MAX
from tests.unit.test_store import request_fields

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pipeline_hook.json"
# 19 groups and the project, each at GitLab's 255-character limit.
DEEPEST = "/".join(f"{level:02d}" + "g" * 253 for level in range(20))
HOST = "https://gitlab.example.com"


def pipeline_for(path: str) -> dict:
    event = json.loads(FIXTURE.read_text())
    event["project"]["path_with_namespace"] = path
    event["project"]["web_url"] = f"{HOST}/{path}"
    event["object_attributes"]["url"] = f"{HOST}/{path}/-/pipelines/5001"
    event["commit"]["url"] = f"{HOST}/{path}/-/commit/{'a' * 40}"
    return event


def test_the_deepest_path_gitlab_allows_is_accepted() -> None:
    assert len(DEEPEST) == FULL_PATH_MAX
    event = parse_pipeline(pipeline_for(DEEPEST))
    assert event.project.path_with_namespace == DEEPEST


def test_a_path_longer_than_gitlab_allows_is_still_refused() -> None:
    with pytest.raises(BadEvent, match="path_with_namespace"):
        parse_pipeline(pipeline_for(DEEPEST + "x"))


def test_the_store_keeps_the_deepest_path_and_its_urls(db: Database) -> None:
    web = f"{HOST}/{DEEPEST}"
    fields = request_fields(
        project_path=DEEPEST,
        project_url=web,
        pipeline_url=f"{web}/-/pipelines/5001",
        commit_url=f"{web}/-/commit/{'a' * 40}",
        merge_request_url=f"{web}/-/merge_requests/1",
    )
    created, _ = store.create(db, fields)
    kept = store.find_for_job(db, 101, 9001)
    assert kept is not None
    assert kept.id == created.id
    assert kept.project_path == DEEPEST
    assert kept.pipeline_url == f"{web}/-/pipelines/5001"
    assert kept.merge_request_url == f"{web}/-/merge_requests/1"
