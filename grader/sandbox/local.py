"""The local backend: bubblewrap where it works, else a plain process with resource limits.

Used on laptops, in CI and for students' self-checks. The outcome records which isolation
was used, since only bubblewrap hides the disk and the network from the student's code.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from grader.sandbox.base import SandboxBackend, run_folder
from grader.sandbox.gpus import device_nodes, host_has_nvidia_gpu
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
from grader.sandbox.supervisor import cancelled, supervise
from grader.sandbox.warm import WarmPool

LAUNCH_PATH = Path(__file__).with_name("launch.py")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/alternatives")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group")


def _python_dirs() -> list[str]:
    """Where this interpreter, torch and numpy live: mounted read-only so the runner can import them."""
    import importlib.util

    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.realpath(sys.executable)}
    for name in ("torch", "torchvision", "numpy"):
        # find_spec locates the package without importing it: the host never needs torch itself.
        spec = importlib.util.find_spec(name)
        if spec and spec.origin:
            candidates.add(str(Path(spec.origin).resolve().parent.parent))
    dirs = {
        str(Path(path).resolve()) if Path(path).is_dir() else str(Path(path).resolve().parent) for path in candidates
    }
    # Mount outer folders only: a nested one would be hidden or duplicated.
    return sorted(d for d in dirs if not any(d != other and d.startswith(other + os.sep) for other in dirs))


@functools.cache
def bwrap_works() -> bool:
    """bubblewrap is installed and this kernel lets it make namespaces (some containers forbid it)."""
    if sys.platform != "linux" or not shutil.which("bwrap"):
        return False
    # --size (bubblewrap 0.5+) is probed too: every tmpfs of the sandbox needs a size.
    probe = ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    probe += ["--size", str(2**20), "--tmpfs", "/tmp", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def bwrap_remedy() -> str:
    """How to get bubblewrap working on this machine, in one sentence."""
    if os.environ.get("GRADER_LOCAL_ISOLATION") == "process":
        return "GRADER_LOCAL_ISOLATION=process turns bubblewrap off: unset it."
    if sys.platform != "linux":
        return "bubblewrap exists only on Linux."
    if shutil.which("bwrap"):
        return (
            "bubblewrap is installed but cannot create namespaces here (too old for --size, or user namespaces "
            "are disabled: see `bwrap --unshare-all --ro-bind / / true`)."
        )
    return "Install bubblewrap (apt-get install bubblewrap, dnf install bubblewrap)."


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _tasks_of_current_user() -> int | None:
    """Processes and threads this user already runs: RLIMIT_NPROC counts them all, not just the sandbox's.

    None where there is no /proc to count them (macOS): then no process limit is set rather than a wrong one.
    """
    if not Path("/proc").is_dir():
        return None
    uid, count = os.getuid(), 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                count += len(os.listdir(entry / "task"))
        except OSError:
            pass
    return count


class PidsCgroup:
    """A pids cgroup capping one run's processes. Root needs it: RLIMIT_NPROC never applies to root."""

    V1_ROOT, V2_ROOT = Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")

    def __init__(self, limit: int) -> None:
        self.path: Path | None = None
        roots = []
        if (self.V1_ROOT / "cgroup.procs").exists():
            roots.append(self.V1_ROOT)
        if "pids" in _read(self.V2_ROOT / "cgroup.controllers"):
            with contextlib.suppress(OSError):
                (self.V2_ROOT / "cgroup.subtree_control").write_text("+pids")
            roots.append(self.V2_ROOT)
        for root in roots:
            try:
                path = root / f"grader-{os.getpid()}-{time.monotonic_ns()}"
                path.mkdir()
                (path / "pids.max").write_text(str(limit))
                self.path = path
                return
            except OSError:
                continue

    def remove(self) -> None:
        """Kills whatever is left in the group (the first kill of a namespace's init takes the rest) and removes it."""
        if not self.path:
            return
        for _ in range(200):
            for pid in _read(self.path / "cgroup.procs").split():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(pid), signal.SIGKILL)
            try:
                self.path.rmdir()
                self.path = None
                return
            except OSError:
                time.sleep(0.05)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _rlimits(limits: SandboxLimits, memory: bool) -> dict[str, int]:
    mb = 2**20
    rlimits = {"RLIMIT_CPU": limits.cpu_seconds, "RLIMIT_FSIZE": limits.file_size_mb * mb, "RLIMIT_CORE": 0}
    user_tasks = None if _is_root() else _tasks_of_current_user()
    if user_tasks is not None:
        rlimits["RLIMIT_NPROC"] = user_tasks + limits.processes
    if memory:
        # Counts what the process allocates, not the gigabytes of address space torch's libraries reserve.
        rlimits["RLIMIT_DATA"] = limits.memory_mb * mb
    return rlimits


def bwrap_base_command(sizes: dict[str, int], use_gpu: bool) -> list[str]:
    """bubblewrap with every flag a sandbox shares, cold or warm: namespaces, no capabilities, the system read-only."""
    command = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--unshare-user", "--uid", "65534"]
    command += ["--gid", "65534", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    # Mounted first: a later bind lands on top, so a Python living under /tmp (a CI checkout) stays visible.
    # Every tmpfs has a size: an unsized one would let a submission fill the host's memory.
    command += ["--proc", "/proc", "--dev", "/dev", "--size", str(sizes["/dev/shm"] * 2**20), "--tmpfs", "/dev/shm"]
    command += ["--size", str(sizes["/tmp"] * 2**20), "--tmpfs", "/tmp"]
    for path in SYSTEM_DIRS + tuple(_python_dirs()):
        if os.path.exists(path):
            command += ["--ro-bind", path, path]
    for path in SYSTEM_FILES:
        if os.path.exists(path):
            command += ["--ro-bind", path, path]
    for device in device_nodes() if use_gpu else []:
        command += ["--dev-bind", device, device]
    return command


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
        if self.warm_pool is not None:
            env = self._environment(Path("/scratch"), use_gpu, job.gpu)
            outcome = self.warm_pool.run(job, use_gpu=use_gpu, env=env, rlimits=_rlimits(job.limits, not use_gpu))
            if outcome is not None:
                return outcome  # else a cold run, today's path, for this student
            if cancelled():
                return cancelled_outcome(self.name, self.isolation)
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
        command += [sys.executable, "-I", "-B", "/sandbox/runner.py"]
        return command + runner_arguments(job, "/submission", "/data/images.npy", "/output")

    def _process_command(self, job: SandboxJob, inside: Path, output: Path, scratch: Path) -> list[str]:
        command = [sys.executable, "-I", "-B", str(inside / "runner.py")]
        command += runner_arguments(job, str(job.submission_dir.resolve()), str(job.images_file.resolve()), str(output))
        command += ["--guard", "--guard-write", str(scratch)]
        # The interpreter and its libraries stay readable even when they live under a hidden folder
        # (a .venv inside the project, beside the rubric).
        for library in _python_dirs():
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
            "rlimits": _rlimits(limits, memory=not use_gpu),
        }
        return [sys.executable, "-I", "-S", str(LAUNCH_PATH), json.dumps(settings), "--", *command]

    def _execute(self, job, command, env, folder, watched, use_gpu) -> SandboxOutcome:
        limits = job.limits
        stdout_path, stderr_path = folder / "stdout.log", folder / "stderr.log"
        cgroup = PidsCgroup(limits.processes) if _is_root() else None
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
            stdout=_read_tail(stdout_path),
            stderr=_read_tail(stderr_path),
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


def _read_tail(path: Path, limit: int = 64 * 1024) -> bytes:
    with open(path, "rb") as stream:
        stream.seek(max(0, path.stat().st_size - limit))
        return stream.read()
