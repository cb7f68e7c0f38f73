"""Warm local sandboxes: one long-lived bubblewrap sandbox per worker that has already imported torch.

A cold run pays a fresh interpreter and `import torch` for every submission. Here each worker keeps a
"zygote" (inside/zygote.py) in a sandbox started with the cold run's flags, except that instead of one
student's files it sees a per-worker inbox. For each submission the host copies the student's files
and the images into a fresh job folder of the inbox, and the zygote forks a child that puts itself in
new user, mount and pid namespaces, sees only that job folder (the inbox hidden), gets fresh sized
tmpfs, drops every capability and sets the limits before the runner imports model.py.

The host side is the cold run's: the same supervise loop and the same `read_outcome`. Anything
abnormal (a zygote that does not start or dies, a step of the isolation that fails) discards the
zygote and returns None: the caller then runs that student cold. A run the supervisor had to stop
(timeout, disk, cancel) kills the whole zygote; the next submission starts a fresh one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from grader.sandbox.bwrap import bwrap_base_command, sealed, seccomp_settings
from grader.sandbox.host_limits import PidsCgroup, is_root, launcher
from grader.sandbox.protocol import (
    INSIDE_DIR,
    SandboxJob,
    SandboxOutcome,
    read_outcome,
    runner_arguments,
    tmpfs_sizes_mb,
)
from grader.sandbox.supervisor import POLL_SECONDS, cancelled, read_tail, remove_tree, supervise

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 180
# Processes of the zygote's own sandbox besides the submission's: bwrap, its init, the zygote, the job's
# child and the job's namespace init.
ZYGOTE_PROCESSES = 5
REPLY_MAX_BYTES = 64 * 1024
# The zygote's own in-memory folders: it writes nothing; every job mounts fresh ones of the job's sizes.
ZYGOTE_TMPFS_MB = {"/tmp": 16, "/dev/shm": 16, "/scratch": 16}


# What the runner's own folders hold: a permission error there is the sandbox's failure, not the model's.
SANDBOX_PATHS = ("'/output", "'/data/", "'/sandbox/")
HOST_PACKAGES = ("torch", "torchvision", "numpy")


def failure_of_the_warm_sandbox(outcome: SandboxOutcome) -> str | None:
    """Why a failed warm run may be the warm sandbox's fault, not the submission's: a module of the standard
    library or of the grader's own packages missing, or the runner's own folders refused. A cold run does not
    fail so; None for every other outcome."""
    text = outcome.failure or ""
    if outcome.failure_kind is None or not text:
        return None
    _, found, rest = text.partition("No module named '")
    if found:
        module = rest.partition("'")[0].split(".")[0]
        if module in sys.stdlib_module_names or module in HOST_PACKAGES:
            return f"the module {module!r} could not be imported in the warm sandbox"
    if "Permission denied" in text and any(path in text for path in SANDBOX_PATHS):
        return "the warm sandbox refused its own folders"
    return None


class Zygote:
    """One warm sandbox: a bubblewrap sandbox running inside/zygote.py, one job at a time."""

    def __init__(self, *, use_gpu: bool, env: dict[str, str], processes: int) -> None:
        self.use_gpu = use_gpu
        self.folder = Path(tempfile.mkdtemp(prefix="grader-warm-"))
        self.inbox = self.folder / "inbox"
        self.inbox.mkdir()
        inside = shutil.copytree(INSIDE_DIR, self.folder / "inside", ignore=shutil.ignore_patterns("__pycache__"))
        self.cgroup = PidsCgroup(processes + ZYGOTE_PROCESSES) if is_root() else None
        self.jobs = 0
        self.reply: dict | None = None
        self._received = b""
        command = bwrap_base_command(ZYGOTE_TMPFS_MB, use_gpu)
        command += ["--bind", str(self.inbox), "/inbox", "--ro-bind", str(inside), "/sandbox"]
        command += ["--dir", "/submission", "--dir", "/data", "--dir", "/output"]
        command += ["--size", str(ZYGOTE_TMPFS_MB["/scratch"] * 2**20), "--tmpfs", "/scratch", "--chdir", "/scratch"]
        command += [*sealed(), sys.executable, "-I", "-B", "/sandbox/zygote.py"]
        settings = {
            "cgroup": str(self.cgroup.path) if self.cgroup and self.cgroup.path else None,
            "rlimits": {"RLIMIT_CORE": 0},
            **seccomp_settings(),
        }
        launch = launcher(settings, command)
        self._log = open(self.folder / "zygote.log", "wb")  # noqa: SIM115 - open while the zygote lives
        # Its own BLAS pool would be a thread at the fork; torch's pool starts in each child, on first use.
        env = {**env, "OPENBLAS_NUM_THREADS": "1"}
        # No preexec_fn: the launcher sets the limits, so the grader never forks with threads running.
        self.process = subprocess.Popen(
            launch,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            cwd=self.folder,
            start_new_session=True,
        )

    def wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not cancelled():
            if not self.busy():
                return bool(self.reply and self.reply.get("ready") is True)
        return False

    def busy(self) -> bool:
        """Waits up to a poll for the zygote's next line; False once it has answered or died."""
        if self.reply is not None:
            return False
        stream = self.process.stdout
        if stream is None:
            return False
        # Up to one poll of the supervisor: an answer is seen the moment it comes, not at the next poll.
        readable, _, _ = select.select([stream], [], [], POLL_SECONDS)
        if readable:
            chunk = os.read(stream.fileno(), REPLY_MAX_BYTES)
            if not chunk or len(self._received) + len(chunk) > REPLY_MAX_BYTES:
                self.kill()
                return False
            self._received += chunk
            if b"\n" in self._received:
                line, self._received = self._received.split(b"\n", 1)
                try:
                    reply = json.loads(line)
                except ValueError:
                    reply = None
                self.reply = reply if isinstance(reply, dict) else {"error": "unreadable reply"}
                return False
        return self.process.poll() is None

    def prepare(self, job: SandboxJob) -> Path:
        """A fresh job folder in the inbox: a copy of the submission, the images, an empty output folder."""
        self.jobs += 1
        job_dir = self.inbox / f"job-{self.jobs}"
        job_dir.mkdir()
        try:
            # Symlinks stay links, as in a cold run's bind of the folder: they never reach a host file.
            shutil.copytree(job.submission_dir, job_dir / "submission", symlinks=True)
            (job_dir / "data").mkdir()
            images = job_dir / "data" / "images.npy"
            try:
                os.link(job.images_file, images)
            except OSError:
                shutil.copyfile(job.images_file, images)
            (job_dir / "output").mkdir()
            (job_dir / "stdout.log").touch()
            (job_dir / "stderr.log").touch()
        except BaseException:
            remove_tree(job_dir)
            raise
        return job_dir

    def send(self, message: dict, processes: int) -> bool:
        """Starts a job; `processes` is its limit, which the zygote's pids cgroup takes for this job."""
        self.reply = None
        if self.cgroup and self.cgroup.path:
            with contextlib.suppress(OSError):
                (self.cgroup.path / "pids.max").write_text(str(processes + ZYGOTE_PROCESSES))
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
            return True
        except OSError:
            return False

    def inbox_empty(self) -> bool:
        return not any(self.inbox.iterdir())

    def kill(self) -> None:
        """The whole sandbox: the launcher's session, and whatever is left in its pids cgroup."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self.cgroup:
            self.cgroup.remove()

    def close(self) -> None:
        self.kill()
        for stream in (self.process.stdin, self.process.stdout, self._log):
            with contextlib.suppress(OSError):
                if stream:
                    stream.close()
        remove_tree(self.folder)


class WarmPool:
    """The warm sandboxes of one backend: an idle one is reused, a new one started when every one is busy."""

    def __init__(self, *, backend: str, isolation: str) -> None:
        self.backend, self.isolation = backend, isolation
        self._idle: list[Zygote] = []
        self._all: set[Zygote] = set()
        self._lock = threading.Lock()
        self.broken: str | None = None  # why warm runs stopped for this session: every run is then cold
        self.zygotes_started = 0

    def run(
        self, job: SandboxJob, *, use_gpu: bool, env: dict[str, str], rlimits: dict[str, int]
    ) -> tuple[SandboxOutcome | None, str | None]:
        """The outcome of a warm run; or None and, when the warm run failed as a cold one would not, why: the
        caller then runs the student cold."""
        if self.broken:
            return None, None
        zygote = self._take(use_gpu, env, job.limits.processes)
        if zygote is None:
            return None, None
        reusable, job_dir = False, None
        try:
            try:
                job_dir = zygote.prepare(job)
            except (OSError, shutil.Error) as error:
                # A file that cannot be copied (a pipe, a socket) is the submission's: the zygote stays.
                log.warning("warm sandbox: cannot copy %s (%s); running it cold", job.submission_dir, error)
                reusable = True
                return None, None
            outcome, reusable = self._run_job(zygote, job, job_dir, env, rlimits)
            suspect = failure_of_the_warm_sandbox(outcome) if outcome is not None else None
            if suspect:
                reusable = False
                log.warning("warm sandbox retired after %s: %s; grading it again cold", job.submission_dir, suspect)
                return None, suspect
            return outcome, None
        finally:
            if job_dir is not None:
                remove_tree(job_dir)
            self._release(zygote, reusable and zygote.inbox_empty())

    def _run_job(self, zygote, job, job_dir, env, rlimits) -> tuple[SandboxOutcome | None, bool]:
        limits = job.limits
        message = {
            "name": job_dir.name,
            "argv": runner_arguments(job, "/submission", "/data/images.npy", "/output"),
            "env": env,
            "rlimits": rlimits,
            "tmpfs_mb": tmpfs_sizes_mb(limits),
        }
        started = time.monotonic()
        if not zygote.send(message, limits.processes):
            return None, False
        output, stdout, stderr = job_dir / "output", job_dir / "stdout.log", job_dir / "stderr.log"
        verdict = supervise(
            running=zygote.busy,
            kill=zygote.kill,
            wall_clock_seconds=limits.wall_clock_seconds,
            disk_mb=limits.disk_mb,
            watched=[output, stdout, stderr],
        )
        stopped = verdict.cancelled or verdict.timed_out or bool(verdict.overflow)
        reply = zygote.reply or {}
        if not stopped and not (isinstance(reply.get("exit"), int) and reply.get("isolated") is True):
            self._note_failure(reply, stderr)
            return None, False
        outcome = read_outcome(
            backend=self.backend,
            isolation=self.isolation,
            output_dir=output,
            exit_code=reply.get("exit") if not stopped else -signal.SIGKILL,
            verdict=verdict,
            limits=limits,
            wall_seconds=time.monotonic() - started,
            stdout=read_tail(stdout),
            stderr=read_tail(stderr),
        )
        return outcome, not stopped

    def _note_failure(self, reply: dict, stderr: Path) -> None:
        """A zygote that died or could not isolate a job: that student runs cold; a failed isolation is no
        accident of one submission, so warm runs stop for the session."""
        if "exit" in reply and reply.get("isolated") is False:
            self.broken = "the warm sandbox could not isolate a job: " + read_tail(stderr).decode(errors="replace")
            log.warning("%s; grading cold from now on", self.broken[-2000:])
        else:
            log.warning("warm sandbox: the zygote stopped (%s); running this submission cold", reply or "no reply")

    def idle(self) -> list[Zygote]:
        with self._lock:
            return list(self._idle)

    def _take(self, use_gpu: bool, env: dict[str, str], processes: int) -> Zygote | None:
        """An idle zygote that is still alive, else a new one once it has imported torch."""
        with self._lock:
            matching = [zygote for zygote in self._idle if zygote.use_gpu == use_gpu]
            for zygote in matching:
                self._idle.remove(zygote)
        while matching:
            zygote = matching.pop()
            if zygote.process.poll() is None:
                with self._lock:
                    self._idle.extend(matching)
                return zygote
            self._release(zygote, reusable=False)
        with self._lock:
            self.zygotes_started += 1
        try:
            zygote = Zygote(use_gpu=use_gpu, env=env, processes=processes)
        except OSError as error:
            self.broken = f"the warm sandbox did not start: {error}"
            log.warning("%s; grading cold", self.broken)
            return None
        with self._lock:
            self._all.add(zygote)
        if zygote.wait_ready():
            return zygote
        if not cancelled():
            reason = (zygote.folder / "zygote.log").read_text(errors="replace")
            self.broken = f"the warm sandbox did not start: {reason}"
            log.warning("%s; grading cold", self.broken[-2000:])
        self._release(zygote, reusable=False)
        return None

    def _release(self, zygote: Zygote, reusable: bool) -> None:
        with self._lock:
            if reusable and not cancelled():
                self._idle.append(zygote)
                return
            self._all.discard(zygote)
        zygote.close()

    def close(self) -> None:
        with self._lock:
            zygotes, self._all, self._idle = list(self._all), set(), []
        for zygote in zygotes:
            zygote.close()
