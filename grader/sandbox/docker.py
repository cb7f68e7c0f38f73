"""The Docker backend: one fresh, hardened container per submission, on the instructor's grading server.

Every container flag is decided in one place (`_container_options`). The student's code sees its own
submission and the test images read-only, a size-capped scratch tmpfs and an empty output folder; no
network, no capabilities, no root. The host enforces the wall clock and removes the container whatever
happens: a finished run, a crash, a timeout, or the grader itself being interrupted (docker_cleanup.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from grader.sandbox.base import SandboxBackend, SandboxUnavailable, run_folder
from grader.sandbox.docker_cleanup import (
    docker_sdk,
    install_cleanup_handlers,
    live_containers,
    owner_labels,
    remove_container,
    remove_leftover_containers,
)
from grader.sandbox.gpus import host_has_nvidia_gpu
from grader.sandbox.protocol import (
    INSIDE_DIR,
    ErrorKind,
    SandboxJob,
    SandboxOutcome,
    cancelled_outcome,
    read_outcome,
    runner_arguments,
    sandbox_environment,
    tmpfs_sizes_mb,
)
from grader.sandbox.supervisor import Verdict, cancelled, supervise

DEFAULT_IMAGE = "lab8-grader-sandbox:latest"
IMAGE_ENV = "GRADER_SANDBOX_IMAGE"
FALLBACK_USER = "65534:65534"
# The container kills itself this long after the host's deadline, in case the grader died meanwhile.
SELF_DESTRUCT_MARGIN_SECONDS = 60
LOG_MAX = "1m"
BUILD_HINT = "build it with `make sandbox-image` (or `make sandbox-image OFFLINE=1` where no registry is reachable)"
DISK_MARKERS = ("No space left on device", "File too large", "Disk quota exceeded")


class DockerBackend(SandboxBackend):
    name = "docker"
    isolation = "docker"

    @classmethod
    def configured(cls, *, image: str | None = None, warm: bool = False) -> DockerBackend:
        if warm:
            # The container's seccomp profile refuses the namespaces a warm sandbox's child makes for itself.
            logging.getLogger(__name__).info("sandbox.warm applies to the local backend only: Docker runs stay cold")
        return cls(image=image)

    def __init__(
        self,
        image: str | None = None,
        gpu_device_ids: list[str] | None = None,
        mount_runner: bool = True,
    ) -> None:
        """image: the sandbox image, the rubric's sandbox.image; $GRADER_SANDBOX_IMAGE overrides it on one machine.
        gpu_device_ids: the GPUs this backend's containers get ("0", "1", or UUIDs); None means all.
        mount_runner: mount the grader's current inside/ folder (the runner and its diagnostics) over
        the image's copy in /opt/grader, so that a changed runner needs no rebuild of the image.
        """
        self.image_name = os.environ.get(IMAGE_ENV) or image or DEFAULT_IMAGE
        self.gpu_device_ids = [str(device) for device in gpu_device_ids] if gpu_device_ids else None
        self.mount_runner = mount_runner
        self._client = None
        self._image = None

    # --- availability ---

    def check_available(self) -> None:
        docker = docker_sdk()
        if self._client is None:
            try:
                client = docker.from_env(timeout=60)
                client.ping()
            except (docker.errors.DockerException, OSError) as error:
                raise SandboxUnavailable(self._engine_remedy(error)) from error
            self._client = client
        if self._image is None:
            try:
                self._image = self._client.images.get(self.image_name)
            except docker.errors.ImageNotFound as error:
                raise SandboxUnavailable(f"the sandbox image {self.image_name} is missing: {BUILD_HINT}") from error
            except docker.errors.APIError as error:
                raise SandboxUnavailable(f"cannot inspect the sandbox image {self.image_name}: {error}") from error
            remove_leftover_containers(self._client)

    @staticmethod
    def _engine_remedy(error: Exception) -> str:
        text = str(error)
        if "Permission denied" in text or "PermissionError" in text:
            return (
                "the Docker engine refused this user: add it to the docker group (sudo usermod -aG docker $USER, "
                "then log in again) or grade with --sandbox local"
            )
        return (
            "the Docker engine does not answer: start it (sudo systemctl start docker, or `dockerd &`) "
            f"or grade with --sandbox local ({text[:200]})"
        )

    @property
    def image_digest(self) -> str:
        return self._image.id

    def close(self) -> None:
        # Each run removes its own container; the registry is only for interruptions and exit.
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- one run ---

    def run(self, job: SandboxJob) -> SandboxOutcome:
        if cancelled():
            return cancelled_outcome(self.name, self.isolation)
        self.check_available()
        use_gpu = job.device != "cpu" and host_has_nvidia_gpu()
        if job.device == "cuda" and not use_gpu:
            return SandboxOutcome(
                backend=self.name,
                isolation=self.isolation,
                failure_kind=ErrorKind.DEVICE,
                failure="CUDA was requested but this host has no NVIDIA GPU; grade with device 'cpu' or 'auto'",
                image_digest=self.image_digest,
            )
        install_cleanup_handlers()
        with run_folder("grader-docker-") as folder:
            output = folder / "output"
            output.mkdir()
            self._let_container_write(output)
            return self._execute(job, output, use_gpu)

    def _let_container_write(self, output: Path) -> None:
        """The container runs as a non-root user: it must own the output folder, or be allowed in."""
        uid, _, gid = self._container_user().partition(":")
        try:
            os.chown(output, int(uid), int(gid or uid))
            output.chmod(0o700)
        except (OSError, ValueError):
            output.chmod(0o777)  # the folder above is the grader's own 0700 temporary folder

    def _container_user(self) -> str:
        """The image's own user when it is a numeric non-root one, else nobody."""
        user = (self._image.attrs.get("Config") or {}).get("User") or ""
        uid = user.partition(":")[0]
        return user if uid.isdigit() and int(uid) != 0 else FALLBACK_USER

    def _execute(self, job: SandboxJob, output: Path, use_gpu: bool) -> SandboxOutcome:
        from docker.errors import APIError, NotFound

        limits = job.limits
        started = time.monotonic()
        verdict, state, logs = Verdict(), {}, (b"", b"")
        # Named and registered before it exists: an interruption during the create call still finds it.
        name = f"lab8-grader-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        live_containers.add(name)
        try:
            try:
                container = self._client.containers.create(name=name, **self._container_options(job, output, use_gpu))
                container.start()
            except APIError as error:
                raise SandboxUnavailable(self._create_remedy(error, use_gpu)) from error

            def running() -> bool:
                try:
                    container.reload()
                except NotFound:
                    return False  # removed under us: by cancel-all's cleanup, or by hand
                return container.status in ("created", "running")

            def kill() -> None:
                with contextlib.suppress(APIError):  # it may have exited on its own meanwhile
                    container.kill()

            # The output folder is a host folder with no size of its own: a flood overshoots the
            # limit by what it writes in one poll (each file is capped by the fsize ulimit).
            verdict = supervise(
                running=running,
                kill=kill,
                wall_clock_seconds=limits.wall_clock_seconds,
                disk_mb=limits.disk_mb,
                watched=[output],
            )
            with contextlib.suppress(APIError):
                container.reload()
                state = container.attrs.get("State") or {}
                logs = (container.logs(stdout=True, stderr=False), container.logs(stdout=False, stderr=True))
        finally:
            remove_container(self._client, name)
        outcome = read_outcome(
            backend=self.name,
            isolation=self.isolation,
            output_dir=output,
            exit_code=state.get("ExitCode"),
            verdict=verdict,
            limits=limits,
            wall_seconds=time.monotonic() - started,
            stdout=logs[0],
            stderr=logs[1],
            image_digest=self.image_digest,
        )
        return self._explain(outcome, state, job)

    @staticmethod
    def _explain(outcome: SandboxOutcome, state: dict[str, Any], job: SandboxJob) -> SandboxOutcome:
        """What only the engine knows: the memory cgroup's kill, and full tmpfs or file-size limits."""
        host_verdicts = (ErrorKind.TIMEOUT, ErrorKind.DISK, ErrorKind.CANCELLED)
        if outcome.logits is not None or outcome.failure_kind in host_verdicts:
            return outcome
        if state.get("OOMKilled"):
            outcome.failure_kind = ErrorKind.MEMORY
            outcome.failure = f"killed for using more than the {job.limits.memory_mb} MB memory limit"
        elif outcome.failure and any(marker in outcome.failure for marker in DISK_MARKERS):
            outcome.failure_kind = ErrorKind.DISK
            outcome.failure = (
                f"ran out of disk (scratch {job.limits.disk_mb} MB, files up to {job.limits.file_size_mb} MB): "
                f"{outcome.failure}"
            )
        return outcome

    @staticmethod
    def _create_remedy(error: Exception, use_gpu: bool) -> str:
        if use_gpu and ("device driver" in str(error) or "gpu" in str(error).lower()):
            return (
                "the Docker engine cannot give containers a GPU: install the NVIDIA Container Toolkit "
                "(nvidia-ctk runtime configure --runtime=docker, then restart Docker) or grade with device cpu "
                f"({error})"
            )
        return f"the Docker engine refused to create the sandbox container: {error}"

    def _container_options(self, job: SandboxJob, output: Path, use_gpu: bool) -> dict[str, Any]:
        """Every flag of the sandbox container, in one place."""
        docker = docker_sdk()
        limits = job.limits
        mb = 2**20
        mounts = [
            docker.types.Mount("/submission", str(job.submission_dir.resolve()), type="bind", read_only=True),
            docker.types.Mount("/data/images.npy", str(job.images_file.resolve()), type="bind", read_only=True),
            docker.types.Mount("/output", str(output), type="bind", read_only=False),
        ]
        if self.mount_runner:
            mounts.append(docker.types.Mount("/opt/grader", str(INSIDE_DIR), type="bind", read_only=True))
        arguments = runner_arguments(job, "/submission", "/data/images.npy", "/output")
        deadline = int(limits.wall_clock_seconds + SELF_DESTRUCT_MARGIN_SECONDS)
        command = ["timeout", "-s", "KILL", str(deadline), "python3", "-I", "-B", "/opt/grader/runner.py", *arguments]
        sizes = tmpfs_sizes_mb(limits)
        options: dict[str, Any] = {
            "image": self._image.id,
            "command": command,
            "entrypoint": [],
            "user": self._container_user(),
            "working_dir": "/scratch",
            "environment": sandbox_environment("/scratch"),
            "labels": owner_labels(),
            "hostname": "sandbox",
            "init": True,  # a real PID 1 reaps what the submission forks, and passes on signals
            "detach": True,
            "network_disabled": True,
            "network_mode": "none",
            "read_only": True,
            "tmpfs": {
                "/scratch": f"size={sizes['/scratch']}m,mode=1777,nosuid,nodev",
                "/tmp": f"size={sizes['/tmp']}m,mode=1777,nosuid,nodev",
            },
            "mounts": mounts,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "pids_limit": limits.processes,
            "mem_limit": f"{limits.memory_mb}m",
            "memswap_limit": f"{limits.memory_mb}m",
            "shm_size": f"{sizes['/dev/shm']}m",
            "ipc_mode": "private",
            "ulimits": [
                docker.types.Ulimit(name="core", soft=0, hard=0),
                docker.types.Ulimit(name="fsize", soft=limits.file_size_mb * mb, hard=limits.file_size_mb * mb),
                docker.types.Ulimit(name="cpu", soft=limits.cpu_seconds, hard=limits.cpu_seconds),
            ],
            "log_config": docker.types.LogConfig(type="json-file", config={"max-size": LOG_MAX, "max-file": "1"}),
        }
        if limits.cpus > 0:
            options["environment"]["OMP_NUM_THREADS"] = str(max(1, int(limits.cpus)))
            options["nano_cpus"] = int(limits.cpus * 1e9)
        if use_gpu:
            device_ids = [job.gpu] if job.gpu is not None else self.gpu_device_ids
            request = (
                docker.types.DeviceRequest(device_ids=device_ids, capabilities=[["gpu"]])
                if device_ids
                else docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])
            )
            options["device_requests"] = [request]
        return options
