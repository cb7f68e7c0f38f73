"""Grading on a Ray cluster: one task per student, run on whichever node Ray places it (docs/CLUSTER.md).

The driver (the TA's `grade --all`) sends each node what it needs once, through Ray's object store and
keyed by its sha256: the rubric's text, the pinned split, the baselines and, with the integrity checks
on, the course secret. A node opens a grading session from it once per worker process, after checking
the hashes, and grades with grade_submission as the local pool does, so the labels stay in the node's
host-side session and never enter a sandbox. A student's folder travels as its files' bytes (size-capped)
and is unpacked into a private temporary folder; the result comes back as JSON and is validated here.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import logging
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from pydantic import ValidationError

from grader import __version__
from grader.batch.executors.base import Executor, ExecutorError, ExecutorSettings, Finished
from grader.batch.plan import StudentPlan
from grader.datasets import LabelledImages
from grader.intake.submission import MAX_HASHED_FILES, MAX_SOURCE_BYTES, MAX_WEIGHTS_BYTES
from grader.pipeline import GradingSession, grade_submission
from grader.pipeline.session import SessionInputs, open_session
from grader.results.model import Result
from grader.rubric.config import load_rubric
from grader.sandbox.base import run_folder
from grader.sandbox.supervisor import remove_tree

try:
    import ray
except ImportError:  # the optional `cluster` extra; check_available says how to install it
    ray = None

INSTALL_HINT = 'install it with `pip install -e ".[cluster]"` (make setup does) on this machine and every node'
# One submission's files together: the largest weights the intake accepts plus room for sources and answers.
MAX_SUBMISSION_BYTES = MAX_WEIGHTS_BYTES + 64 * MAX_SOURCE_BYTES
MAX_RESULT_BYTES = 64 << 20
# A task lost with its node (or its worker process) is run again this many times before it is a grader failure.
TASK_RETRIES = 3
# Submissions queued on the cluster beyond those it can run at once: enough to keep every node busy,
# few enough that a class's weights are not all copied into the object store at once.
QUEUED_PER_SLOT = 2
WAIT_SECONDS = 0.5
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionSpec:
    """Everything a node needs to open the same grading session as the driver; the labels included, which
    stay in the node's host-side process."""

    grader_version: str
    rubric_text: str
    rubric_text_sha256: str
    rubric_content_hash: str
    split_npz: bytes
    split_sha256: str  # the pinned content hash of the images and labels
    backend: str
    isolation: str
    timeout_seconds: float | None
    baselines: dict[str, float]
    secret: bytes | None
    train_npz: bytes | None
    integrity_not_measured: list[str] = field(default_factory=list)
    private_npz: bytes | None = None

    def key(self) -> str:
        """Names this session in each worker's cache; every input that shapes a result is in it."""
        digest = hashlib.sha256()
        for part in (
            self.grader_version,
            self.rubric_text_sha256,
            self.split_sha256,
            self.backend,
            self.isolation,
            repr(self.timeout_seconds),
            repr(sorted(self.baselines.items())),
            hashlib.sha256(self.secret or b"").hexdigest(),
            hashlib.sha256(self.train_npz or b"").hexdigest(),
            hashlib.sha256(self.private_npz or b"").hexdigest(),
        ):
            digest.update(part.encode() + b"\0")
        return digest.hexdigest()


def session_spec(session: GradingSession) -> SessionSpec:
    rubric_text = session.rubric_path.read_text(encoding="utf-8")
    return SessionSpec(
        grader_version=__version__,
        rubric_text=rubric_text,
        rubric_text_sha256=hashlib.sha256(rubric_text.encode()).hexdigest(),
        rubric_content_hash=session.rubric.content_hash(),
        split_npz=_npz_bytes(session.split),
        split_sha256=session.split_sha256,
        backend=session.backend.name,
        isolation="sandbox" if session.backend.is_boundary else "process",
        timeout_seconds=session.timeout_seconds,
        baselines=dict(session.baselines),
        secret=session.secret,
        train_npz=_npz_bytes(session.train_sample) if session.train_sample is not None else None,
        integrity_not_measured=list(session.integrity_not_measured),
        private_npz=_npz_bytes(session.private_sample) if session.private_sample is not None else None,
    )


def _npz_bytes(images: LabelledImages) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, images=images.images, labels=images.labels)
    return buffer.getvalue()


def _from_npz(data: bytes, source: str) -> LabelledImages:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return LabelledImages(images=arrays["images"], labels=arrays["labels"], source=source)


# --- the student's files, there and back -----------------------------------------------------------


def pack_submission(folder: Path) -> dict[str, bytes]:
    """Every regular file of the folder by its relative path, as submission_hashes sees them (links and
    __pycache__ left out), so that the node hashes the same inputs. Over the caps it is refused here."""
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(Path(folder).rglob("*")):
        if path.is_symlink() or not path.is_file() or "__pycache__" in path.parts:
            continue
        if len(files) >= MAX_HASHED_FILES:
            break
        total += path.stat().st_size
        if total > MAX_SUBMISSION_BYTES:
            raise ValueError(f"{folder}: over {MAX_SUBMISSION_BYTES >> 20} MB of files, too large to send to a node")
        files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def unpack_submission(files: dict[str, bytes], folder: Path) -> None:
    """Writes the files under `folder`, refusing any name that would land outside it."""
    if sum(len(data) for data in files.values()) > MAX_SUBMISSION_BYTES or len(files) > MAX_HASHED_FILES:
        raise ValueError("the submission sent to this node is over the size or file-count limit")
    folder.mkdir(parents=True)
    for name, data in files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or not relative.parts or ".." in relative.parts or "\\" in name:
            raise ValueError(f"a submission file name that leaves its folder: {name!r}")
        path = folder.joinpath(*relative.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# --- on the node ---------------------------------------------------------------------------------

_sessions: dict[str, GradingSession] = {}
_sessions_lock = threading.Lock()
_node_folders: list[Path] = []
_node_exit_stack = contextlib.ExitStack()


def _node_session(key: str, spec_ref) -> GradingSession:
    """The session for this key, opened once per worker process (ray.get fetches the spec only then)."""
    with _sessions_lock:
        if key not in _sessions:
            spec = ray.get(spec_ref)
            if spec.key() != key:
                raise RuntimeError("the session sent to this node does not match its sha256 key")
            _sessions[key] = _open_node_session(spec)
        return _sessions[key]


def _open_node_session(spec: SessionSpec) -> GradingSession:
    """The driver's session, opened on this node by open_session, as every verb opens one: only the inputs come
    from the spec instead of files. It lives until the worker process ends."""
    if spec.grader_version != __version__:
        raise RuntimeError(f"this node runs grader {__version__}, the driver {spec.grader_version}: install the same")
    if hashlib.sha256(spec.rubric_text.encode()).hexdigest() != spec.rubric_text_sha256:
        raise RuntimeError("the rubric sent to this node does not match its sha256")
    hidden = Path(tempfile.mkdtemp(prefix="grader-node-"))  # the rubric: never shown to a sandbox
    _node_folders.append(hidden)
    rubric_path = hidden / "rubric.yaml"
    rubric_path.write_text(spec.rubric_text, encoding="utf-8")
    rubric = load_rubric(rubric_path)
    if rubric.content_hash() != spec.rubric_content_hash:
        raise RuntimeError("the rubric read on this node differs from the driver's")
    split = _from_npz(spec.split_npz, f"split {spec.split_sha256[:12]} from the driver")
    if split.content_sha256() != spec.split_sha256:
        raise RuntimeError("the split sent to this node does not match its sha256")
    inputs = SessionInputs(
        split=split,
        split_sha256=spec.split_sha256,
        baselines=dict(spec.baselines),
        hidden_paths=[hidden],
        secret=spec.secret,
        train_sample=_from_npz(spec.train_npz, "training sample from the driver") if spec.train_npz else None,
        private_sample=_from_npz(spec.private_npz, "private sample from the driver") if spec.private_npz else None,
        integrity_not_measured=list(spec.integrity_not_measured),
    )
    session = open_session(
        rubric,
        rubric_path,
        inputs=inputs,
        backend=spec.backend,
        timeout_seconds=spec.timeout_seconds,
        isolation=spec.isolation,
    )
    return _node_exit_stack.enter_context(session)


@atexit.register
def _close_node_sessions() -> None:
    with contextlib.suppress(Exception):
        _node_exit_stack.close()  # each session closes its backend and removes its images folder
    for folder in _node_folders:
        remove_tree(folder)


def grade_on_node(key: str, spec_box: list, student: str, files: dict[str, bytes]) -> str:
    """One Ray task: the student graded on this node, the Result as JSON. spec_box holds the spec's
    ObjectRef inside a list so that Ray does not fetch it for every task, only for a worker's first."""
    session = _node_session(key, spec_box[0])
    gpus = ray.get_gpu_ids()
    with run_folder("grader-submission-") as root:
        folder = root / student
        unpack_submission(files, folder)
        result = grade_submission(folder, session, student, gpu=str(gpus[0]) if gpus else None)
    return result.model_dump_json()


# --- on the driver -------------------------------------------------------------------------------


@dataclass
class _Task:
    plan: StudentPlan
    ref: object


class RayExecutor(Executor):
    """Submits a window of tasks, collects them as they finish, and keeps the window full."""

    name = "ray"

    def __init__(self, settings: ExecutorSettings) -> None:
        super().__init__(settings)
        self.check_available()
        self._pending: dict[object, _Task] = {}
        self._connected = False

    @classmethod
    def check_available(cls) -> None:
        if ray is None:
            raise ExecutorError(f"--executor ray needs the Ray package, which is not installed: {INSTALL_HINT}")

    def describe(self) -> str:
        return f"the Ray cluster at {self.settings.address}" if self.settings.address else "a local Ray cluster"

    def grade(
        self, plans: list[StudentPlan], session: GradingSession, started: Callable[[str], None]
    ) -> Iterator[Finished]:
        self._connect()
        cpus, gpus = self._cpus(session), self._gpus(session)
        self._check_a_node_fits(cpus, gpus)
        spec = session_spec(session)
        spec_ref = ray.put(spec)
        task = ray.remote(grade_on_node).options(
            num_cpus=cpus, num_gpus=gpus, max_retries=TASK_RETRIES, retry_exceptions=False
        )
        key = spec.key()
        window = max(1, QUEUED_PER_SLOT * int(ray.cluster_resources().get("CPU", 1)))
        waiting = list(reversed(plans))
        while waiting or self._pending:
            while waiting and len(self._pending) < window:
                plan = waiting.pop()
                submitted = self._submit(task, key, spec_ref, plan)
                if isinstance(submitted, Finished):
                    yield submitted
            if self._pending:
                ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=WAIT_SECONDS)
                for ref in ready:
                    yield self._collect(self._pending.pop(ref))

    def _submit(self, task, key: str, spec_ref, plan: StudentPlan) -> Finished | None:
        try:
            files = pack_submission(plan.folder)
        except (OSError, ValueError) as error:
            return Finished(plan, crash=f"{type(error).__name__}: {error}")
        ref = task.remote(key, [spec_ref], plan.student, files)
        self._pending[ref] = _Task(plan, ref)
        log.info("%r: sent to the cluster (%s)", plan.student, plan.describe())
        return None

    def _collect(self, task: _Task) -> Finished:
        """The task's Result, validated; a task that raised or was lost past its retries is a grader fault."""
        try:
            text = ray.get(task.ref)
        except ray.exceptions.RayError as error:
            return Finished(task.plan, crash=_short(error))
        if not isinstance(text, str) or len(text) > MAX_RESULT_BYTES:
            return Finished(task.plan, crash="the node returned something other than a result")
        try:
            result = Result.model_validate_json(text)
        except ValidationError as error:
            return Finished(task.plan, crash=f"the node's result does not validate: {error.error_count()} error(s)")
        if result.student != task.plan.student:
            return Finished(task.plan, crash=f"the node returned the result of {result.student!r}")
        return Finished(task.plan, result=result)

    def cancel(self) -> list[Finished]:
        """Finished tasks are collected; every other one is cancelled, its worker process killed."""
        done: list[Finished] = []
        if not self._pending:
            return done
        ready, _ = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=0)
        for ref in ready:
            finished = self._collect(self._pending.pop(ref))
            if finished.result is not None:
                done.append(finished)
        for ref in self._pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        self._pending.clear()
        return done

    def close(self) -> None:
        if self._connected:
            ray.shutdown()
            self._connected = False

    def _connect(self) -> None:
        """ray.init replaces the SIGTERM handler with its own exit; the grader's (stop like Ctrl-C) is put back."""
        previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
        try:
            ray.init(address=self.settings.address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = self.settings.address or "this machine"
            raise ExecutorError(f"cannot join a Ray cluster at {where}: {error}") from error
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        self._connected = True

    def _check_a_node_fits(self, cpus: float, gpus: int) -> None:
        """Ray would queue a task that no node can hold for ever: that is said at once instead."""
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        if any(node.get("CPU", 0) >= cpus and node.get("GPU", 0) >= gpus for node in nodes):
            return
        largest = max((node.get("CPU", 0) for node in nodes), default=0)
        raise ExecutorError(
            f"no node of the Ray cluster at {self.settings.address or 'this machine'} has {cpus:g} CPU(s)"
            f"{f' and {gpus} GPU(s)' if gpus else ''} for one submission (the largest has {largest:g} CPUs): "
            "lower sandbox.limits.cpus in the rubric, or start the nodes with more (ray start --num-cpus)"
        )

    @staticmethod
    def _cpus(session: GradingSession) -> float:
        cpus = session.rubric.sandbox.limits.cpus
        return cpus if cpus > 0 else 1

    @staticmethod
    def _gpus(session: GradingSession) -> int:
        """A GPU per task when the rubric lets the model use one and the cluster has any; else none, so that
        tasks never wait for a GPU no node has."""
        if session.rubric.sandbox.device == "cpu":
            return 0
        return 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0


def _short(error: BaseException) -> str:
    """A Ray error in one line: the exception the task raised on its node, else Ray's own (a lost node)."""
    cause = getattr(error, "cause", None)
    error = cause if isinstance(cause, BaseException) else error
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}"[:500]
