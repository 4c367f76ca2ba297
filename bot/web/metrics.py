"""Prometheus metrics of the edge, and of the queue and worker read at scrape time.

In-process (default registry): webhooks and Slack requests by outcome (their blueprints),
request latency per endpoint (here). Read from Redis when /metrics is scraped (a
per-app registry, so several apps in one process never clash): queue depth, failed and
scheduled jobs, readiness, and the worker's counters (`bot.metrics`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.exceptions import RedisError
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from bot import metrics as counters
from bot.web.support import Edge

log = logging.getLogger(__name__)

REQUEST_SECONDS = Histogram(
    "approval_bot_http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint (route pattern)",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class EdgeCollector:
    """Gauges and the worker's counters, read when /metrics is scraped.

    A Redis outage never fails the scrape: `approval_bot_ready` says 0 and the Redis-backed
    metrics are left out of that scrape.
    """

    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    def collect(self) -> Iterator[Metric]:
        ready = self.edge.readiness.ready()
        yield GaugeMetricFamily(
            "approval_bot_ready",
            "1 when Redis and the database answer (as /readyz), else 0",
            value=1.0 if ready else 0.0,
        )
        try:
            yield from self._queue()
            yield from self._counters()
        except (RedisError, OSError) as exc:
            log.warning("queue metrics unavailable, Redis failed: %s", type(exc).__name__)

    def _queue(self) -> Iterator[Metric]:
        queue = self.edge.queue
        # Build the families fully before yielding, so a Redis error yields nothing partial.
        depth = queue.count
        failed = FailedJobRegistry(queue=queue).get_job_count(cleanup=False)
        scheduled = ScheduledJobRegistry(queue=queue).get_job_count(cleanup=False)  # type: ignore[no-untyped-call]
        yield GaugeMetricFamily(
            "approval_bot_queue_depth", "Jobs waiting in the RQ queue", value=float(depth)
        )
        yield GaugeMetricFamily(
            "approval_bot_failed_jobs",
            "Jobs in RQ's failed job registry (out of retries)",
            value=float(failed),
        )
        yield GaugeMetricFamily(
            "approval_bot_scheduled_jobs",
            "Jobs waiting for a retry (RQ's scheduled job registry)",
            value=float(scheduled),
        )

    def _counters(self) -> Iterator[Metric]:
        redis = self.edge.runtime.redis
        families = []
        for name, (labels, help_text) in counters.COUNTERS.items():
            family = CounterMetricFamily(counters.PREFIX + name, help_text, labels=list(labels))
            for values, count in counters.read(redis, name):
                family.add_metric([values[label] for label in labels], float(count))
            families.append(family)
        yield from families


def app_registry(edge: Edge) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EdgeCollector(edge))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The text format of the process-wide metrics followed by this app's."""
    return generate_latest(REGISTRY) + generate_latest(registry)
