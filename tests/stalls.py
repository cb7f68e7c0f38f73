"""Jobs that stall an answers worker (grader/answers/worker.py) the way a pathological input would.

They run in the worker process, which imports them by name: this module imports nothing heavy, so a
job starts at once and the deadline is spent inside the stall, not in an import.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path


def hold_the_gil(request: dict) -> bool:
    """Says it started (a file beside the answers, or where `started` says), then runs a catastrophic regular
    expression: one C call that would take hours and never lets go of the GIL, so no thread can interrupt it."""
    started = Path(request["started"]) if "started" in request else Path(request["path"]).with_name("stalled")
    started.write_text("the stall began")
    return re.match(r"(a*)*b", "a" * 64) is not None


def die(request: dict) -> None:
    """The worker killed in the middle of a job, as the kernel's out-of-memory killer would."""
    os.kill(os.getpid(), signal.SIGKILL)
