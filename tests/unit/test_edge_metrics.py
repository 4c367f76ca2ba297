"""/metrics: latency per endpoint, queue depth, failed jobs, readiness, worker counters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq.registry import FailedJobRegistry

from bot import metrics
from tests.unit.edge_support import edge_app
from workers.queue import enqueue, make_queue


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_counters_in_redis_are_incremented_and_read(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        metrics.incr(redis, "plays_total", {"result": "played"})
        metrics.incr(redis, "plays_total", {"result": "played"}, amount=2)
        metrics.incr(redis, "decisions_total", {"outcome": "granted"})
        assert metrics.read(redis, "plays_total") == [({"result": "played"}, 3)]
        assert metrics.read(redis, "decisions_total") == [({"outcome": "granted"}, 1)]
        redis.hset(metrics.KEY.format("plays_total"), "garbage", "x")
        assert metrics.read(redis, "plays_total") == [({"result": "played"}, 3)]
    finally:
        redis.flushdb()


def test_unknown_counters_or_labels_are_refused(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    with pytest.raises(metrics.UnknownMetric):
        metrics.incr(redis, "nope_total", {})
    with pytest.raises(metrics.UnknownMetric):
        metrics.incr(redis, "plays_total", {"outcome": "x"})


def test_counting_never_fails_when_redis_is_down() -> None:
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    metrics.incr(down, "plays_total", {"result": "played"})  # logged, not raised


def test_metrics_expose_latency_queue_readiness_and_worker_counters(
    tmp_path: Path, redis_url: str
) -> None:
    redis = Redis.from_url(redis_url)
    try:
        with edge_app(tmp_path, redis_url) as (app, runtime):
            queue = make_queue(runtime.redis)
            enqueue(queue, "workers.jobs.notify", {"text": "1"})
            enqueue(queue, "workers.jobs.notify", {"text": "2"})
            failed = enqueue(queue, "workers.jobs.notify", {"text": "3"})
            queue.remove(failed)
            FailedJobRegistry(queue=queue).add(failed, ttl=60, exc_string="boom")
            metrics.incr(runtime.redis, "decisions_total", {"outcome": "denied:self_approval"})
            metrics.incr(runtime.redis, "plays_total", {"result": "played"})

            client = app.test_client()
            assert client.get("/healthz").status_code == 200
            answer = client.get("/metrics")
            assert answer.status_code == 200
            assert answer.mimetype == "text/plain"
            found = samples(answer.get_data(as_text=True))
        assert found[("approval_bot_ready", ())] == 1.0
        assert found[("approval_bot_queue_depth", ())] == 2.0
        assert found[("approval_bot_failed_jobs", ())] == 1.0
        assert found[("approval_bot_scheduled_jobs", ())] == 0.0
        assert found[("approval_bot_decisions_total", (("outcome", "denied:self_approval"),))] == 1
        assert found[("approval_bot_plays_total", (("result", "played"),))] == 1
        healthz = (("endpoint", "/healthz"),)
        assert found[("approval_bot_http_request_duration_seconds_count", healthz)] >= 1
    finally:
        redis.flushdb()


def test_metrics_answer_while_redis_is_down(tmp_path: Path) -> None:
    with edge_app(tmp_path, "redis://127.0.0.1:1/0") as (app, _):
        answer = app.test_client().get("/metrics")
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert re.search(r"^approval_bot_ready 0\.0$", text, flags=re.MULTILINE)
    assert "approval_bot_queue_depth" not in text
