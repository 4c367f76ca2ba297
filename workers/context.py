"""The worker process's Runtime, set once by `approval-bot worker` before jobs run."""

from __future__ import annotations

from bot.runtime import Runtime

_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime  # noqa: PLW0603 - one per process, set at startup
    _runtime = runtime


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError(
            "the worker runtime is not configured; start it with `approval-bot worker`"
        )
    return _runtime
