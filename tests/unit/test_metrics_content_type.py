"""/metrics names its charset once (issue #17, item 5): Prometheus' content type already
carries `charset=utf-8`, and Flask added a second one."""

from __future__ import annotations

from pathlib import Path

from tests.unit.edge_support import edge_app


def test_metrics_content_type_has_one_charset(tmp_path: Path, redis_url: str) -> None:
    with edge_app(tmp_path, redis_url) as (app, _runtime):
        answer = app.test_client().get("/metrics")
    assert answer.status_code == 200
    content_type = answer.headers["Content-Type"]
    assert content_type.startswith("text/plain; version=")
    assert content_type.count("charset=") == 1, content_type
    assert content_type.endswith("; charset=utf-8")
