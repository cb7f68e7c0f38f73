"""Host work on a student's answers, in worker processes that a deadline can stop.

Reading, parsing and scoring an answers file run in a worker process, never in the grader itself: a
deadline in a thread cannot stop code that holds the GIL (a C-level loop over a pathological input, a
stuck library), but the grader can kill a process. A worker is a fresh interpreter
(`python -m grader.answers.worker`), never a fork of the grader, which runs threads (BLAS, torch,
its grading workers). Workers live as long as the grader's process and take one job at a time, so
the answer model loads once per worker: a job takes an idle worker or starts one, and a class run
keeps as many as it scores answers at once. A job past its deadline kills its worker's process group
(the worker and the .docx/.pdf reader it may have started) and raises WorkerStopped; the next job
starts a fresh worker.

A job names a function, "module:name", that takes and returns JSON values. Requests and replies are
one JSON line each, on the worker's stdin and on its original stdout; what a library prints goes to
/dev/null instead.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from importlib import import_module
from pathlib import Path
from typing import Any

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds `grader`
_REPLY_LIMIT = 16_000_000  # bytes of one reply; a result of four answers is a few kilobytes
# Small matrix products only: BLAS threads of their own would compete with the sandboxes for the cores.
_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class WorkerStopped(Exception):
    """The job has no result: it ran past its deadline and its worker was killed, or its worker ended."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why  # "stopped after 120 s", "ended without answering (killed by signal 9)"


class WorkerFailed(RuntimeError):
    """The job raised in the worker (a fault of the grader); the message is the exception's."""


class _PastDeadline(Exception):
    pass


class _Worker:
    """One worker process and its two pipes."""

    def __init__(self) -> None:
        paths = [str(_PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader.answers.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **_ONE_THREAD, "PYTHONPATH": os.pathsep.join(paths)},
            # Its own process group, killed whole; a Ctrl-C at the terminal is the grader's to handle.
            start_new_session=sys.platform != "win32",
        )
        self.jobs = 0  # served before this one

    def exchange(self, request: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Sends one request and reads its reply by a thread of its own (pipes cannot be waited on with a timeout
        everywhere); a deadline leaves that thread to the kill, which ends it by closing the pipes' far ends."""
        replies: list[bytes] = []

        def talk() -> None:
            try:
                self.process.stdin.write(json.dumps(request).encode() + b"\n")
                self.process.stdin.flush()
                replies.append(self.process.stdout.readline(_REPLY_LIMIT))
            except (OSError, ValueError):  # the worker has gone, or its pipes were closed by a kill
                replies.append(b"")

        talker = threading.Thread(target=talk, name="answers-worker-pipe", daemon=True)
        talker.start()
        talker.join(max(0.0, deadline - time.monotonic()))
        if talker.is_alive():
            raise _PastDeadline
        reply = replies[0]
        if not reply:
            raise WorkerStopped(self._ended())
        if not reply.endswith(b"\n"):
            raise WorkerFailed(f"a reply of more than {_REPLY_LIMIT} bytes")
        try:
            decoded = json.loads(reply)
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            raise WorkerFailed(f"an unreadable reply: {reply[:200]!r}")
        return decoded

    def _ended(self) -> str:
        self.kill()
        code = self.process.returncode
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return f"ended without answering ({how})"

    def kill(self) -> None:
        """The whole process group, then the worker is reaped (not before: its pid names the group until then)."""
        if self.process.returncode is None:
            if sys.platform == "win32":
                self.process.kill()
            else:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


class WorkerPool:
    """Idle workers kept for the next job; a job without one starts one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()

    def call(self, target: str, payload: Any, *, seconds: float) -> Any:
        """target(payload) in a worker: WorkerStopped at the deadline or when the worker ended, WorkerFailed when
        the job raised."""
        deadline = time.monotonic() + seconds
        while True:
            worker = self._take()
            try:
                reply = worker.exchange({"target": target, "payload": payload}, deadline)
            except _PastDeadline:
                self._drop(worker)
                raise WorkerStopped(f"stopped after {seconds:g} s") from None
            except WorkerStopped:
                self._drop(worker)
                if worker.jobs:
                    continue  # it had ended while idle (its memory taken back, say): a fresh worker takes the job
                raise
            except BaseException:
                self._drop(worker)
                raise
            break
        worker.jobs += 1
        self._give_back(worker)
        if "error" in reply:
            raise WorkerFailed(str(reply["error"]))
        return reply.get("result")

    def _take(self) -> _Worker:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        worker = worker or _Worker()
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            self._idle.append(worker)

    def _drop(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._busy.discard(worker)

    def worker_pids(self) -> list[int]:
        with self._lock:
            return sorted(worker.process.pid for worker in (*self._idle, *self._busy))

    def close(self) -> None:
        """Kills every worker, busy or idle; a later job starts a new one."""
        with self._lock:
            workers = [*self._idle, *self._busy]
            self._idle, self._busy = [], set()
        for worker in workers:
            worker.kill()


_SHARED: WorkerPool | None = None
_SHARED_LOCK = threading.Lock()


def shared_pool() -> WorkerPool:
    """The pool of this process, started on first use and closed at exit (an idle worker also ends when the
    grader's end closes its stdin)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = WorkerPool()
            atexit.register(_SHARED.close)
        return _SHARED


def serve() -> None:
    """The worker's loop: one request a line on stdin, one reply a line on the stdout it was started with."""
    replies = os.fdopen(os.dup(1), "wb")
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    functions: dict[str, Any] = {}
    for line in sys.stdin.buffer:
        request = json.loads(line)
        target = request["target"]
        try:
            if target not in functions:
                module, name = target.split(":")
                functions[target] = getattr(import_module(module), name)
            reply = {"result": functions[target](request["payload"])}
        except Exception as error:  # the caller decides; the worker serves the next job
            reply = {"error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()


if __name__ == "__main__":
    serve()
