"""The RQ scheduler child of the worker, bound to its parent: it exits when the worker dies.

RQ forks its scheduler from the worker and never checks on the parent again. A worker killed
with SIGKILL (the OOM killer, `docker kill`) left the child running and holding the scheduler
lock, so a restarted worker could not schedule (retries, delayed jobs) until the orphan was
found and killed by hand.
"""

from __future__ import annotations

import os
from typing import Any

from rq.scheduler import RQScheduler

ORPHANED = "scheduler: the worker (pid %d) is gone; releasing the scheduler lock and stopping"


class ParentBoundScheduler(RQScheduler):
    """Stops (releasing its locks) within one interval (1 s) of its worker's death."""

    parent_pid = 0

    def start(self) -> Any:
        self.parent_pid = os.getpid()  # the worker: start() runs in it, before the fork
        return super().start()  # type: ignore[no-untyped-call]

    def heartbeat(self) -> None:
        if self.parent_pid and os.getppid() != self.parent_pid:
            self.log.warning(ORPHANED, self.parent_pid)
            self.request_stop()  # type: ignore[no-untyped-call]
            return  # work() stops at the top of its next round, and releases the locks
        super().heartbeat()  # type: ignore[no-untyped-call]
