"""Where the webhook's time goes: CPU per request, in process, one stage added at a time.

`python -m bench.intake_breakdown` (run by bench.intake in a subprocess, with the bench
stack's environment: settings, policy, Redis DB 9). Uses the Flask test client, so no
gunicorn or sockets to the client; Redis round trips are real. Each row adds one stage to
the previous: the differences are what that stage costs. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

N = 1500
WARM = 50


def _per_request(fn: Callable[[int], Any], n: int = N) -> dict[str, float]:
    for i in range(n, n + WARM):  # warm up, with indexes of their own
        fn(i)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(n):
        fn(i)
    return {
        "cpu_ms": round(1000 * (time.process_time() - cpu) / n, 3),
        "wall_ms": round(1000 * (time.perf_counter() - wall) / n, 3),
    }


def main() -> None:
    import redis

    from bench import bare_app
    from bench.intake import fill, template
    from bench.stack import flush
    from bot.runtime import build_runtime
    from bot.settings import load_settings
    from bot.web.app import create_app

    runtime = build_runtime(load_settings())
    bot = create_app(runtime).test_client()
    bare = bare_app.create_app().test_client()
    text = template(os.environ["GITLAB_URL"])
    bodies = [fill(text, 50_000_000 + i) for i in range(N + WARM)]
    fresh = [fill(text, 70_000_000 + i) for i in range(N + WARM)]
    other = [b.replace(b'"bench/svc-00"', b'"elsewhere/svc-00"') for b in bodies]
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": "Pipeline Hook",
        "X-Gitlab-Token": os.environ["GITLAB_WEBHOOK_SECRET"],
    }

    def post(client: Any, body: bytes, status: int, **extra: str) -> None:
        answer = client.post("/webhooks/gitlab", data=body, headers={**headers, **extra})
        assert answer.status_code == status, (answer.status_code, answer.data)

    flush()
    post(bot, bodies[0], 202, **{"Idempotency-Key": "bd-dup"})
    connection = redis.Redis.from_url(os.environ["REDIS_URL"])
    rows = {
        "bare app (read body, 202)": _per_request(lambda i: post(bare, bodies[i], 202)),
        "bot: 401 wrong token": _per_request(
            lambda i: post(bot, bodies[i], 401, **{"X-Gitlab-Token": "wrong"})
        ),
        "bot: + JSON, pydantic, policy (200 ignored)": _per_request(
            lambda i: post(bot, other[i], 200, **{"Idempotency-Key": f"bd-i{i}"})
        ),
        "bot: + delivery SET NX (200 duplicate)": _per_request(
            lambda _i: post(bot, bodies[0], 200, **{"Idempotency-Key": "bd-dup"})
        ),
        "bot: + gate SET NX (200 duplicate)": _per_request(
            lambda i: post(bot, bodies[0], 200, **{"Idempotency-Key": f"bd-g{i}"})
        ),
        "bot: + RQ enqueue (202 queued, the full path)": _per_request(
            lambda i: post(bot, fresh[i], 202, **{"Idempotency-Key": f"bd-q{i}"})
        ),
        "one Redis PING from this process": _per_request(lambda _i: connection.ping()),
    }
    flush()
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
