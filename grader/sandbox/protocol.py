"""What the host sends into a sandbox and what it reads back, shared by every backend.

A backend starts the runner (inside/runner.py, with the rest of inside/ beside it) with the
submission and the test images mounted read-only and an empty output folder; `read_outcome` then
reads that folder through one narrow, size-capped channel and turns exits, signals and timeouts
into reasons.
"""

from __future__ import annotations

import json
import signal
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WrapValidator,
    field_validator,
)

if TYPE_CHECKING:
    from grader.sandbox.supervisor import Verdict

# Everything that runs inside: files only, copied or mounted whole; host code never imports them.
INSIDE_DIR = Path(__file__).with_name("inside")
META_MAX_BYTES = 64 * 1024
PROGRESS_FILE = "progress.json"
IMPORT_LIMIT_KEY = "sandbox.limits.import_seconds"
LOG_TAIL_CHARS = 4000
NUM_CLASSES = 10


class SandboxLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wall_clock_seconds: float = Field(default=600, gt=0, description="Whole run, from start to results")
    import_seconds: float = Field(
        default=60,
        ge=0,
        description="Importing model.py (a model that trains or loads data at import stops here, not at the "
        "wall clock); 0: only the wall clock",
    )
    memory_mb: int = Field(default=4096, gt=0, description="Memory the student's process may allocate")
    cpu_seconds: int = Field(default=3600, gt=0, description="CPU time over all threads")
    processes: int = Field(default=512, gt=0, description="Processes and threads (torch uses one per core)")
    file_size_mb: int = Field(default=256, gt=0, description="Largest file the submission may write")
    disk_mb: int = Field(default=512, gt=0, description="Scratch space plus output, all files together")
    output_mb: int = Field(default=64, gt=0, description="Largest logits file read back")
    cpus: float = Field(default=0, ge=0, description="CPU cores for one run (Docker quota); 0 means all")


class SandboxJob(BaseModel):
    """One run of one submission. Paths are on the host; the backend decides where they appear inside."""

    submission_dir: Path
    model_file: str | None = Field(description="model.py's name in submission_dir; None for TorchScript")
    weights_file: str
    images_file: Path = Field(description="uint8 [N, 32, 32, 3] .npy holding the test images, never labels")
    batch_size: int = 500
    device: Literal["auto", "cpu", "cuda"] = "auto"
    gpu: str | None = Field(default=None, description="The one GPU (index or UUID) this run gets; None: all visible")
    diagnose: bool = Field(default=False, description="Self-check: probe the model for common mistakes afterwards")
    limits: SandboxLimits = SandboxLimits()
    hidden_paths: list[Path] = Field(
        default_factory=list,
        description="Host paths the fallback guard refuses to open (labels, grader, results, other students)",
    )


class ErrorKind(str, Enum):
    """Why a submission has no score. The values are stored in results and exports: never rename one."""

    # Raised inside by the runner, which writes them as plain strings (tests/test_sandbox_inside.py checks).
    SYNTAX = "syntax"
    IMPORT = "import"
    CONTRACT = "contract"
    BUILD = "build"
    WEIGHTS = "weights"
    FORWARD = "forward"
    OUTPUT = "output"  # the host's too: unreadable logits, NaN, a wrong shape
    # The host's verdicts on a run.
    TIMEOUT = "timeout"
    MEMORY = "memory"
    CPU = "cpu"
    DISK = "disk"
    KILLED = "killed"
    CRASH = "crash"
    DEVICE = "device"
    CANCELLED = "cancelled"
    # Before any run: the submission's files.
    INTAKE = "intake"
    ERROR = "error"  # a failure that names no kind, or one the host does not know


KNOWN_KINDS = {kind.value for kind in ErrorKind}
# The kinds meta.json may claim: the runner's own. A host verdict (timeout, cancelled, ...) is the host's to give.
RUNNER_KINDS = {kind.value for kind in (ErrorKind.SYNTAX, ErrorKind.IMPORT, ErrorKind.CONTRACT, ErrorKind.BUILD,
                                        ErrorKind.WEIGHTS, ErrorKind.FORWARD, ErrorKind.OUTPUT)}  # fmt: skip
Name = Annotated[str, Field(max_length=500)]
Digits = Annotated[str, Field(pattern=r"^[0-9]*$", max_length=1000)]


class NormalisationProbe(BaseModel):
    """Predicted classes, a digit per image, of every `step`-th test image: as graded (`used`) and under each
    common normalisation (inside/diagnostics.py's NORMALISATIONS). Only the host, which holds the labels, scores them.
    """

    step: int = Field(ge=1)
    used: Digits
    unit: Digits
    half: Digits
    cifar: Digits
    imagenet: Digits


class Diagnostics(BaseModel):
    """The self-check's findings (runner --diagnose), as meta.json carries them: untrusted, so bounded."""

    batchnorm_init: list[Name] = Field(default_factory=list, max_length=5, description="BatchNorm never trained")
    train_mode: list[Name] = Field(default_factory=list, max_length=5, description="Training mode after eval()")
    random: bool = Field(default=False, description="Two identical passes in eval mode differed")
    batch_stats: bool = Field(default=False, description="An image's output depends on the rest of its batch")
    input_shapes: list[tuple[int, int, int]] | None = Field(
        default=None, max_length=10, description="After a forward failure: the probed [C, H, W] that run"
    )
    normalisation: NormalisationProbe | None = None
    skipped: str | None = Field(default=None, max_length=400, description="Why the probes stopped early")


# --- warnings: codes the runner reports, worded only here, on the host ---------------------------------------
# Student code runs in the runner's process and can reach its warnings list, so a warning is a code with typed,
# bounded parameters; any other entry (a free string, an unknown code) is only counted, never shown.


class WholeModelWarning(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Literal["whole-model"] = "whole-model"


class DataParallelWarning(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Literal["dataparallel"] = "dataparallel"


class KeyPrefixWarning(BaseModel):
    """Every weight's name began with one prefix the model's names lack (PyTorch Lightning's `model.`, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Literal["key-prefix"] = "key-prefix"
    prefix: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,40}(\.[A-Za-z_][A-Za-z0-9_]{0,40}){0,3}\.$", strict=True)


class UnrecognisedWarnings(BaseModel):
    """The host's note that the run returned entries it does not accept as warnings, and how many."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Literal["unrecognised"] = "unrecognised"
    count: int = Field(ge=1, le=META_MAX_BYTES, strict=True)


RunWarning = Annotated[
    WholeModelWarning | DataParallelWarning | KeyPrefixWarning | UnrecognisedWarnings, Field(discriminator="code")
]
_RUN_WARNING: TypeAdapter[RunWarning] = TypeAdapter(RunWarning)
# What each code says, in the grader's words: the one place a run's warning becomes text.
WARNING_WORDS = {
    "whole-model": (
        "The weights file holds a whole pickled model, which breaks as soon as the class moves or changes; "
        "save torch.save(model.state_dict(), 'weights.pth') instead."
    ),
    "dataparallel": "The weights' names carried the 'module.' prefix that nn.DataParallel adds; it was removed.",
    "key-prefix": (
        "Every name in the weights began with '{prefix}' (as PyTorch Lightning and torch.compile save them); "
        "without it the names matched the model exactly, so it was removed."
    ),
    "unrecognised": (
        "The run of your code returned {count} message(s) in a form the grader does not accept as a warning; "
        "they are not shown."
    ),
}
# Results stored before warnings were codes held them as "code: words".
_LEGACY_PREFIXES = {"whole-model:": "whole-model", "dataparallel:": "dataparallel"}


def warning_words(warning: RunWarning) -> str:
    return WARNING_WORDS[warning.code].format(**warning.model_dump(exclude={"code"}))


def read_warnings(raw: Any, *, legacy: bool = False) -> list[RunWarning]:
    """The known warnings among `raw`, each code once, and one UnrecognisedWarnings counting everything else.
    `legacy`: also read the "code: words" strings of results stored by older graders."""
    entries = raw if isinstance(raw, list) else [] if raw is None else [raw]
    found: dict[str, RunWarning] = {}
    unrecognised = 0
    for entry in entries:
        if legacy and isinstance(entry, str):
            code = next((code for prefix, code in _LEGACY_PREFIXES.items() if entry.startswith(prefix)), None)
            entry = {"code": code} if code else entry
        try:
            warning = _RUN_WARNING.validate_python(entry)
        except (ValidationError, RecursionError):
            unrecognised += 1
            continue
        if isinstance(warning, UnrecognisedWarnings):
            unrecognised += warning.count
        else:
            found.setdefault(warning.code, warning)
    if unrecognised:
        found["unrecognised"] = UnrecognisedWarnings(count=min(unrecognised, META_MAX_BYTES))
    return list(found.values())


def _claim_or_none(value: Any, handler: Any) -> Any:
    """A figure the run claims that is not of the form the runner writes is dropped, not the run beside it."""
    try:
        return handler(value)
    except ValidationError:
        return None


Claimed = WrapValidator(_claim_or_none)
# What torch.cuda.get_device_name() says (a vendor's product name), or cpu: no sentences, no punctuation of prose.
DEVICE_NAME = r"^(?:cpu|(?:NVIDIA|Tesla|Quadro|GeForce|TITAN|AMD|Radeon)(?: [A-Za-z0-9._()/+-]{1,24}){0,6})$"
MAX_PARAMETERS = 10**12
MAX_SECONDS = 10**6
ClaimedDevice = Annotated[Annotated[str, StringConstraints(pattern=DEVICE_NAME)] | None, Claimed]
ClaimedVersion = Annotated[Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z.+_-]{1,40}$")] | None, Claimed]
ClaimedCount = Annotated[Annotated[int, Field(ge=0, le=MAX_PARAMETERS, strict=True)] | None, Claimed]
ClaimedFormat = Annotated[Literal["state_dict", "safetensors", "torchscript", "whole-model"] | None, Claimed]
ClaimedSeconds = Annotated[Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)] | None, Claimed]
RunWarnings = Annotated[list[RunWarning], BeforeValidator(read_warnings)]


class RunnerMeta(BaseModel):
    """meta.json as the runner writes it. Untrusted: student code ran in the same process and can rewrite any
    of it. So the figures it claims (device, parameters, timings) are kept only in the form the runner writes
    them, and else dropped; they are shown as the run's report and never count for points. Warnings are codes."""

    model_config = ConfigDict(extra="ignore")

    ok: bool = False
    device: ClaimedDevice = None
    torch_version: ClaimedVersion = None
    parameter_count: ClaimedCount = None
    weights_format: ClaimedFormat = None
    load_seconds: ClaimedSeconds = None
    inference_seconds: ClaimedSeconds = None
    warnings: RunWarnings = Field(default_factory=list)
    error_kind: ErrorKind | None = None
    error: str | None = Field(default=None, max_length=5000)
    diagnostics: Diagnostics | None = None

    @field_validator("error_kind", mode="before")
    @classmethod
    def _known_kind(cls, value):
        """A kind that is not the runner's (a forged meta.json claiming a host verdict such as 'cancelled', or
        nonsense) becomes the generic one, not a rejected file."""
        return value if value is None or (isinstance(value, str) and value in RUNNER_KINDS) else ErrorKind.ERROR

    @field_validator("diagnostics", mode="wrap")
    @classmethod
    def _advice_never_voids_the_run(cls, value, handler):
        """Malformed diagnostics are dropped, not the graded figures beside them."""
        try:
            return handler(value)
        except ValidationError:
            return None


class SandboxOutcome(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: str
    isolation: str
    logits: np.ndarray | None = Field(default=None, exclude=True)
    meta: RunnerMeta | None = None
    failure_kind: ErrorKind | None = None
    failure: str | None = None
    exit_code: int | None = None
    failure_phase: Literal["import"] | None = Field(
        default=None, description="import: stopped by the import limit while importing model.py"
    )
    wall_seconds: float = 0.0
    stdout_tail: str = ""
    stderr_tail: str = ""
    image_digest: str | None = None
    cold_rerun: str | None = Field(
        default=None, description="why a warm run was set aside and the submission graded again in a cold sandbox"
    )


def tmpfs_sizes_mb(limits: SandboxLimits) -> dict[str, int]:
    """Every in-memory folder of a sandbox, sized so that together they stay within the disk limit."""
    small = max(1, min(64, limits.disk_mb // 8))
    return {"/tmp": small, "/dev/shm": small, "/scratch": max(1, limits.disk_mb - 2 * small)}


CANCELLED_REASON = "stopped: the grader was interrupted"


def cancelled_outcome(backend: str, isolation: str) -> SandboxOutcome:
    return SandboxOutcome(
        backend=backend,
        isolation=isolation,
        failure_kind=ErrorKind.CANCELLED,
        failure=CANCELLED_REASON,
    )


def sandbox_environment(home: str) -> dict[str, str]:
    """The variables every backend gives the runner; `home` is its writable scratch folder."""
    return {
        "HOME": home,
        "TMPDIR": home,
        "TORCH_HOME": f"{home}/torch",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "LANG": "C.UTF-8",
    }


def runner_arguments(
    job: SandboxJob, submission: str, images: str, output: str, device: str | None = None
) -> list[str]:
    """The runner's command-line arguments, given where the backend mounts each path."""
    return [
        "--submission", submission,
        "--model", job.model_file or "",
        "--weights", job.weights_file,
        "--images", images,
        "--output", output,
        "--batch-size", str(job.batch_size),
        "--device", device or job.device,
        "--import-seconds", f"{job.limits.import_seconds:g}",
    ] + (["--diagnose"] if job.diagnose else [])  # fmt: skip


def tail(text: bytes | str, limit: int = LOG_TAIL_CHARS) -> str:
    if isinstance(text, bytes):
        text = text[-limit * 4 :].decode("utf-8", errors="replace")
    return text if len(text) <= limit else "...[truncated]\n" + text[-limit:]


def _read_meta(output_dir: Path) -> RunnerMeta | None:
    path = output_dir / "meta.json"
    if not path.is_file() or path.is_symlink() or path.stat().st_size > META_MAX_BYTES:
        return None
    try:
        return RunnerMeta.model_validate_json(path.read_bytes())
    except (ValidationError, ValueError, OSError, RecursionError):
        return None


def read_progress(output_dir: Path) -> dict:
    """progress.json as the runner last wrote it; {} when absent or not what the runner could have written.

    Student code runs in the same process and may rewrite it: it only words the reasons and starts the
    import limit, while the wall clock stays the hard limit.
    """
    path = Path(output_dir) / PROGRESS_FILE
    try:
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 4096:
            progress = json.loads(path.read_text(encoding="utf-8", errors="replace"))
            return progress if isinstance(progress, dict) else {}
    except (OSError, ValueError, RecursionError):
        pass
    return {}


def _read_phase(output_dir: Path) -> str:
    """What the runner said it was doing, in words."""
    progress = read_progress(output_dir)
    phase = progress.get("phase")
    if phase == "importing":
        return "importing model.py"
    if phase == "inference":
        done, total = progress.get("done"), progress.get("total")
        if isinstance(done, int) and isinstance(total, int):
            return f"running inference ({done} of {total} images done)"
        return "running inference"
    if phase == "loading":
        return "loading the model (building it, reading the weights)"
    if phase == "done":
        return (
            "exiting after inference: a thread or process the submission started kept it running "
            "(its results are not used)"
        )
    return "starting Python and importing torch"


def read_logits(path: Path, max_bytes: int) -> np.ndarray:
    """The one array the host accepts from the sandbox: plain float, no pickles, bounded size."""
    if path.is_symlink() or not path.is_file():
        raise ValueError("no logits file")
    if path.stat().st_size > max_bytes:
        raise ValueError(f"logits file of {path.stat().st_size} bytes exceeds the {max_bytes}-byte cap")
    array = np.load(path, allow_pickle=False)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"logits must be floating point, found {array.dtype}")
    return array


def _signal_reason(exit_code: int, limits: SandboxLimits) -> tuple[ErrorKind, str]:
    number = -exit_code if exit_code < 0 else exit_code - 128
    # getattr: Windows has none of these signals (its large exit codes are not signals at all).
    if number == getattr(signal, "SIGKILL", None):
        # The memory cgroup's kill is recognised by the backend that knows it (Docker's OOMKilled); a plain
        # SIGKILL may also come from the submission itself.
        return ErrorKind.KILLED, (
            f"killed by SIGKILL: the machine may have run out of memory (limit {limits.memory_mb} MB), "
            "or the submission killed its own process"
        )
    if number == getattr(signal, "SIGXCPU", None):
        return ErrorKind.CPU, f"used more than {limits.cpu_seconds} s of CPU time"
    if number == getattr(signal, "SIGXFSZ", None):
        return ErrorKind.DISK, f"wrote a file larger than {limits.file_size_mb} MB"
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    return ErrorKind.CRASH, f"the process died with {name}"


MEMORY_MARKERS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "out of memory")


def read_outcome(
    *,
    backend: str,
    isolation: str,
    output_dir: Path,
    exit_code: int | None,
    verdict: Verdict,
    limits: SandboxLimits,
    wall_seconds: float,
    stdout: bytes | str = b"",
    stderr: bytes | str = b"",
    image_digest: str | None = None,
) -> SandboxOutcome:
    """Turns what a run left behind into an outcome: logits, or a failure with its reason.

    The runner's files are believed only from a runner that exited by itself with status 0: a process
    that was killed, or killed itself, may have left forged or half-written files behind.
    """
    outcome = SandboxOutcome(
        backend=backend,
        isolation=isolation,
        exit_code=exit_code,
        wall_seconds=round(wall_seconds, 3),
        stdout_tail=tail(stdout),
        stderr_tail=tail(stderr),
        image_digest=image_digest,
    )
    if verdict.cancelled:
        outcome.failure_kind, outcome.failure = ErrorKind.CANCELLED, CANCELLED_REASON
        return outcome
    if verdict.overflow:
        outcome.failure_kind, outcome.failure = ErrorKind.DISK, verdict.overflow
        return outcome
    if verdict.import_timed_out is not None:
        outcome.failure_kind, outcome.failure_phase = ErrorKind.TIMEOUT, "import"
        outcome.failure = (
            f"importing model.py took longer than {verdict.import_timed_out:g} s (the import limit, "
            f"{IMPORT_LIMIT_KEY}); the model must not train or load data at import: put that code under "
            "`if __name__ == '__main__':`"
        )
        return outcome
    if verdict.timed_out:
        phase = _read_phase(output_dir)
        outcome.failure_kind = ErrorKind.TIMEOUT
        outcome.failure = f"exceeded the wall-clock limit of {limits.wall_clock_seconds:g} s while {phase}"
        if phase.startswith(("importing", "loading")):
            outcome.failure += (
                "; does model.py train or download at import time? Put that code under `if __name__ == '__main__':`"
            )
        return outcome
    if exit_code is not None and (exit_code < 0 or exit_code > 128):
        outcome.failure_kind, outcome.failure = _signal_reason(exit_code, limits)
        return outcome
    outcome.meta = _read_meta(output_dir)
    if outcome.meta and outcome.meta.ok:
        if exit_code != 0:
            outcome.meta.ok = False
            outcome.failure_kind = ErrorKind.CRASH
            outcome.failure = f"exited with code {exit_code} after reporting success; its results are not used"
            return outcome
        try:
            outcome.logits = read_logits(output_dir / "logits.npy", limits.output_mb * 2**20)
        except Exception as error:  # noqa: BLE001 - any malformed file is the submission's failure, not ours
            outcome.failure_kind, outcome.failure = ErrorKind.OUTPUT, f"unreadable logits: {error}"
        return outcome
    if outcome.meta and outcome.meta.error:
        outcome.failure_kind, outcome.failure = outcome.meta.error_kind or ErrorKind.ERROR, outcome.meta.error
        if any(marker in outcome.meta.error for marker in MEMORY_MARKERS):
            outcome.failure_kind = ErrorKind.MEMORY
            outcome.failure = f"ran out of memory (limit {limits.memory_mb} MB): {outcome.meta.error}"
        return outcome
    if any(marker in outcome.stderr_tail for marker in MEMORY_MARKERS):
        outcome.failure_kind = ErrorKind.MEMORY
        outcome.failure = f"ran out of memory (limit {limits.memory_mb} MB)"
    else:
        last_line = outcome.stderr_tail.strip().splitlines()[-1:] or ["no output"]
        outcome.failure_kind = ErrorKind.CRASH
        outcome.failure = f"exited with code {exit_code} before writing results ({last_line[0][:300]})"
    return outcome
