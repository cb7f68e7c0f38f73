"""The local backend: bubblewrap where it works, else a plain process with resource limits.

Used on laptops, in CI and for students' self-checks. The outcome records which isolation
was used, since only bubblewrap hides the disk and the network from the student's code.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from grader.sandbox.base import SandboxBackend, run_folder
from grader.sandbox.bwrap import bwrap_base_command, bwrap_works, python_dirs, sealed, seccomp_settings
from grader.sandbox.gpus import host_has_nvidia_gpu
from grader.sandbox.host_limits import PidsCgroup, is_root, launcher, sandbox_rlimits
from grader.sandbox.protocol import (
    INSIDE_DIR,
    SandboxJob,
    SandboxLimits,
    SandboxOutcome,
    cancelled_outcome,
    read_outcome,
    runner_arguments,
    sandbox_environment,
    tmpfs_sizes_mb,
)
from grader.sandbox.supervisor import cancelled, read_tail, supervise
from grader.sandbox.warm import WarmPool


class LocalBackend(SandboxBackend):
    name = "local"

    @classmethod
    def configured(cls, *, image: str | None = None, warm: bool = False) -> LocalBackend:
        # GRADER_WARM_SANDBOX=1 or 0 overrides the rubric's sandbox.warm on one machine (benchmarks).
        override = os.environ.get("GRADER_WARM_SANDBOX", "").strip().lower()
        if override in ("1", "true", "yes", "0", "false", "no"):
            warm = override in ("1", "true", "yes")
        return cls(warm=warm)

    def __init__(self, force_plain_process: bool | None = None, warm: bool = False) -> None:
        """warm: run each submission in a forked child of a warm sandbox (warm.py); bubblewrap only."""
        if force_plain_process is None:
            force_plain_process = os.environ.get("GRADER_LOCAL_ISOLATION") == "process"
        self.use_bwrap = not force_plain_process and bwrap_works()
        self.warm_pool: WarmPool | None = None
        if warm and self.use_bwrap:
            self.warm_pool = WarmPool(backend=self.name, isolation="bwrap (warm)")

    def close(self) -> None:
        if self.warm_pool is not None:
            self.warm_pool.close()

    def check_available(self) -> None:
        return None

    @property
    def isolation(self) -> str:
        if self.use_bwrap:
            return "bwrap"
        if sys.platform == "linux":
            return "process (rlimits, network namespace, audit guard)"
        if sys.platform == "darwin":
            return "process (rlimits, audit guard)"
        return "process (audit guard)"

    @property
    def is_boundary(self) -> bool:
        return self.use_bwrap

    def run(self, job: SandboxJob) -> SandboxOutcome:
        if cancelled():
            return cancelled_outcome(self.name, self.isolation)
        use_gpu = job.device != "cpu" and host_has_nvidia_gpu()
        cold_rerun = None
        if self.warm_pool is not None:
            env = self._environment(Path("/scratch"), use_gpu, job.gpu)
            rlimits = sandbox_rlimits(job.limits, not use_gpu)
            outcome, cold_rerun = self.warm_pool.run(job, use_gpu=use_gpu, env=env, rlimits=rlimits)
            if outcome is not None:
                return outcome  # else a cold run, today's path, for this student
            if cancelled():
                return cancelled_outcome(self.name, self.isolation)
        outcome = self._run_cold(job, use_gpu)
        outcome.cold_rerun = cold_rerun
        return outcome

    def _run_cold(self, job: SandboxJob, use_gpu: bool) -> SandboxOutcome:
        with run_folder("grader-run-") as folder:
            output, scratch = folder / "output", folder / "scratch"
            output.mkdir()
            scratch.mkdir()
            inside = shutil.copytree(INSIDE_DIR, folder / "inside", ignore=shutil.ignore_patterns("__pycache__"))
            if self.use_bwrap:
                command, watched = self._bwrap_command(job, inside, output, use_gpu), [output]
            else:
                command, watched = self._process_command(job, inside, output, scratch), [output, scratch]
            env = self._environment(Path("/scratch") if self.use_bwrap else scratch, use_gpu, job.gpu)
            return self._execute(job, command, env, folder, watched, use_gpu)

    def _environment(self, home: Path, use_gpu: bool, gpu: str | None = None) -> dict[str, str]:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", **sandbox_environment(str(home))}
        if sys.platform == "win32":
            env.update({key: os.environ[key] for key in ("SYSTEMROOT", "PATH") if key in os.environ})
        if not use_gpu:
            env["CUDA_VISIBLE_DEVICES"] = ""
        elif gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        elif "CUDA_VISIBLE_DEVICES" in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        return env

    def _bwrap_command(self, job: SandboxJob, inside: Path, output: Path, use_gpu: bool) -> list[str]:
        sizes = tmpfs_sizes_mb(job.limits)
        command = bwrap_base_command(sizes, use_gpu)
        command += [
            "--ro-bind", str(job.submission_dir.resolve()), "/submission",
            "--ro-bind", str(job.images_file.resolve()), "/data/images.npy",
            "--ro-bind", str(inside), "/sandbox",
            "--bind", str(output), "/output",
            "--size", str(sizes["/scratch"] * 2**20), "--tmpfs", "/scratch",
            "--chdir", "/scratch",
        ]  # fmt: skip
        command += [*sealed(), sys.executable, "-I", "-B", "/sandbox/runner.py"]
        return command + runner_arguments(job, "/submission", "/data/images.npy", "/output")

    def _process_command(self, job: SandboxJob, inside: Path, output: Path, scratch: Path) -> list[str]:
        command = [sys.executable, "-I", "-B", str(inside / "runner.py")]
        command += runner_arguments(job, str(job.submission_dir.resolve()), str(job.images_file.resolve()), str(output))
        command += ["--guard", "--guard-write", str(scratch)]
        # The interpreter and its libraries stay readable even when they live under a hidden folder
        # (a .venv inside the project, beside the rubric).
        for library in python_dirs():
            command += ["--guard-read", library]
        for hidden in job.hidden_paths:
            command += ["--guard-deny", str(Path(hidden).resolve())]
        return command

    def _launch_command(self, command: list[str], limits: SandboxLimits, use_gpu: bool, cgroup) -> list[str]:
        """The command behind the launcher, which sets the limits in a fresh single-threaded process."""
        if sys.platform == "win32":
            return command
        settings = {
            "cgroup": str(cgroup.path) if cgroup and cgroup.path else None,
            "unshare_network": not self.use_bwrap and sys.platform == "linux",
            # CUDA maps its memory in ways that a data-segment limit breaks; Docker's cgroup limit covers GPUs.
            "rlimits": sandbox_rlimits(limits, memory=not use_gpu),
            **(seccomp_settings() if self.use_bwrap else {}),
        }
        return launcher(settings, command)

    def _execute(self, job, command, env, folder, watched, use_gpu) -> SandboxOutcome:
        limits = job.limits
        stdout_path, stderr_path = folder / "stdout.log", folder / "stderr.log"
        cgroup = PidsCgroup(limits.processes) if is_root() else None
        started = time.monotonic()
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            # No preexec_fn: the launcher sets the limits, so this process never forks with threads running.
            process = subprocess.Popen(
                self._launch_command(command, limits, use_gpu, cgroup),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=env,
                cwd=folder / "scratch",
                start_new_session=sys.platform != "win32",
            )
            try:
                verdict = supervise(
                    running=lambda: process.poll() is None,
                    kill=lambda: self._kill(process),
                    wall_clock_seconds=limits.wall_clock_seconds,
                    disk_mb=limits.disk_mb,
                    watched=[*watched, stdout_path, stderr_path],
                )
            finally:
                self._kill(process)
                if cgroup:
                    cgroup.remove()
        return read_outcome(
            backend=self.name,
            isolation=self.isolation,
            output_dir=folder / "output",
            exit_code=process.returncode,
            verdict=verdict,
            limits=limits,
            wall_seconds=time.monotonic() - started,
            stdout=read_tail(stdout_path),
            stderr=read_tail(stderr_path),
        )

    @staticmethod
    def _kill(process: subprocess.Popen) -> None:
        """The whole session: the runner and everything it started."""
        if sys.platform == "win32":
            if process.poll() is None:
                process.kill()
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait()
