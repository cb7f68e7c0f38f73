"""Submissions that attack the grader itself, run through every sandbox: bwrap, the plain process, Docker.

Each attack must end as that submission's outcome with a reason; the grader never crashes, never
believes files a killed runner left behind, and cleans up whatever the submission wrote.
"""

from __future__ import annotations

import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_MODEL, bwrap_available, docker_backend, make_submission, require_tool, sandbox_job

pytestmark = pytest.mark.integration

# Where the runner writes its results, as model.py can find it whatever the backend mounts.
OUTPUT_DIR = 'OUTPUT = sys.argv[sys.argv.index("--output") + 1]\n'


@pytest.fixture(
    params=["bwrap", "bwrap-warm", "process", pytest.param("docker", marks=pytest.mark.docker)],
    scope="module",
)
def backend(request):
    from grader.sandbox.local import LocalBackend

    if request.param == "docker":
        backend = docker_backend()
        yield backend
        backend.close()
        return
    if request.param.startswith("bwrap"):
        require_tool(bwrap_available(), "bubblewrap is not installed or cannot create namespaces here")
    # bwrap-warm: every attack runs in a child forked by the warm sandbox (grader/sandbox/warm.py).
    backend = LocalBackend(force_plain_process=request.param == "process", warm=request.param == "bwrap-warm")
    if request.param == "bwrap-warm":
        assert backend.warm_pool is not None
    yield backend
    backend.close()


def ran_warm(backend, outcome) -> bool:
    """A warm backend must not have fallen back to a cold run: the attack has to meet the warm sandbox."""
    return getattr(backend, "warm_pool", None) is None or outcome.isolation == "bwrap (warm)"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("split") / "images.npy"
    np.save(path, np.random.default_rng(3).integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8))
    return path


def run(backend, images: Path, folder: Path, prelude: str, epilogue: str = "", **limits):
    """Runs the tiny model with `prelude` executed when model.py is imported, and `epilogue` after Net."""
    source = "import os, sys, time\n" + OUTPUT_DIR + textwrap.dedent(prelude) + TINY_MODEL + epilogue
    submission = make_submission(folder, "student", source)
    outcome = backend.run(sandbox_job(submission, images, **{"wall_clock_seconds": 60, "memory_mb": 2048, **limits}))
    assert outcome.failure_kind == "cancelled" or ran_warm(backend, outcome), outcome
    return outcome


def test_a_progress_file_of_the_wrong_shape_is_ignored(backend, images, tmp_path):
    prelude = """
    open(os.path.join(OUTPUT, "progress.json"), "w").write('[["phase"], {"done": "x"}]')
    time.sleep(600)
    """
    outcome = run(backend, images, tmp_path, prelude, wall_clock_seconds=8)
    assert outcome.failure_kind == "timeout"
    assert "while starting Python" in outcome.failure


def test_a_deep_chain_of_folders_is_cleaned_up(backend, images, tmp_path, monkeypatch):
    prelude = """
    for base in (OUTPUT, os.getcwd()):
        os.chdir(base)
        for _ in range(1500):
            os.mkdir("d" * 100)
            os.chdir("d" * 100)
        open("deep-file", "w").write("x")
    os.chdir(OUTPUT)
    """
    # The run's own temporary folders go to a folder of this test's, which must be empty afterwards.
    private = tmp_path / "tmp"
    private.mkdir()
    private.chmod(0o755)  # Docker's non-root user must reach the output folder inside it
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    outcome = run(backend, images, tmp_path / "submission", prelude)
    # Depending on when the supervisor looks, the chain is refused or the run finishes; either way it is gone.
    assert outcome.failure is None or outcome.failure_kind == "disk", outcome.failure
    if outcome.failure:
        assert "nested more than 64 levels" in outcome.failure
    if getattr(backend, "warm_pool", None):
        # A warm sandbox's own folder lives until the backend closes; the job's folder in it must be gone now.
        assert all(not any((zygote / "inbox").iterdir()) for zygote in private.iterdir())
        backend.warm_pool.close()
    assert list(private.iterdir()) == []


def test_results_forged_before_a_self_kill_are_not_believed(backend, images, tmp_path):
    prelude = """
    import json, signal
    import numpy as np
    np.save(os.path.join(OUTPUT, "logits.npy"), np.eye(10, dtype=np.float32)[np.arange(16) % 10])
    json.dump({"ok": True, "device": "cpu"}, open(os.path.join(OUTPUT, "meta.json"), "w"))
    os.kill(os.getpid(), signal.SIGKILL)
    """
    outcome = run(backend, images, tmp_path, prelude)
    assert outcome.logits is None
    assert outcome.failure_kind == "killed", outcome.failure
    assert "SIGKILL" in outcome.failure and "killed its own process" in outcome.failure


def test_results_forged_before_a_nonzero_exit_are_not_believed(backend, images, tmp_path):
    prelude = """
    import json
    import numpy as np
    np.save(os.path.join(OUTPUT, "logits.npy"), np.zeros((16, 10), np.float32))
    json.dump({"ok": True}, open(os.path.join(OUTPUT, "meta.json"), "w"))
    os._exit(3)
    """
    outcome = run(backend, images, tmp_path, prelude)
    assert outcome.logits is None and outcome.failure_kind == "crash"


def test_a_lingering_thread_does_not_hold_a_finished_run(backend, images, tmp_path):
    prelude = """
    import threading
    threading.Thread(target=time.sleep, args=(600,)).start()
    """
    started = time.monotonic()
    outcome = run(backend, images, tmp_path, prelude, wall_clock_seconds=40)
    assert outcome.failure is None, outcome.failure
    assert outcome.logits.shape == (16, 10)
    assert time.monotonic() - started < 40


def test_in_memory_folders_are_capped_by_the_disk_limit(backend, images, tmp_path):
    if backend.name == "local" and not backend.use_bwrap:
        pytest.skip("a plain process has the host's /dev/shm and /tmp: no boundary to test")
    # The model predicts class 1 when every in-memory folder stopped it within the limit, class 0 if one did not.
    prelude = """
    written = {}
    for folder in ("/dev/shm", "/tmp", os.getcwd()):
        written[folder] = 0
        try:
            with open(os.path.join(folder, "fill"), "wb") as stream:
                for _ in range(200):
                    stream.write(b"x" * 2**20)
                    stream.flush()
                    written[folder] += 1
        except OSError:
            pass
        try:
            os.remove(os.path.join(folder, "fill"))
        except OSError:
            pass
    leaked = 0 if max(written.values()) > 64 else 1
    sys.stderr.write(f"written MB: {written}\\n")
    """
    outcome = run(backend, images, tmp_path, prelude, FORWARD_PREDICTS_LEAKED, disk_mb=64, file_size_mb=256)
    assert outcome.failure is None, (outcome.failure, outcome.stderr_tail)
    assert (outcome.logits.argmax(1) == 1).all(), outcome.stderr_tail


def test_no_place_outside_the_sized_folders_takes_bytes(backend, images, tmp_path):
    """The sandbox's own root, /dev and the folders bubblewrap makes for its binds are read-only, and SysV shared
    memory is refused or counted in the memory limit: a run holds no more than its disk and memory limits."""
    if backend.name == "local" and not backend.use_bwrap:
        pytest.skip("a plain process has the host's disk and IPC: no boundary to test")
    prelude = """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    top = "/" + sys.prefix.strip("/").split("/")[0]
    written = {}
    for folder in ("/", "/etc", "/dev", top):
        written[folder] = 0
        try:
            with open(os.path.join(folder, "fill"), "wb") as stream:
                for _ in range(100):
                    stream.write(b"x" * 2**20)
                    stream.flush()
                    written[folder] += 1
        except OSError:
            pass
    shared = 0
    segment = libc.shmget(0, 1536 * 2**20, 0o1600)
    if segment >= 0:
        address = libc.shmat(segment, None, 0)
        libc.shmctl(segment, 0, None)  # IPC_RMID: gone once detached
        if address not in (None, ctypes.c_void_p(-1).value):
            for offset in range(0, 1536 * 2**20, 2**20):
                ctypes.memset(address + offset, 1, 2**20)
                shared += 1
    leaked = 0 if max(written.values()) > 64 or shared > 1024 else 1
    sys.stderr.write(f"written MB: {written}, shared MB: {shared}\\n")
    """
    outcome = run(backend, images, tmp_path, prelude, FORWARD_PREDICTS_LEAKED, disk_mb=64, memory_mb=1024)
    if backend.name == "docker" and outcome.failure_kind == "memory":
        return  # the memory cgroup counts shared memory: the run was stopped at its limit
    assert outcome.failure is None, (outcome.failure, outcome.stderr_tail)
    assert (outcome.logits.argmax(1) == 1).all(), outcome.stderr_tail


FORWARD_PREDICTS_LEAKED = """

def _forward(self, x):
    import torch

    out = torch.zeros(x.shape[0], 10)
    out[:, leaked] = 1
    return out


Net.forward = _forward
"""


def test_cancel_all_stops_a_running_sandbox_at_once(backend, images, tmp_path):
    import threading

    from grader.sandbox.supervisor import cancel_all, reset_cancel

    outcomes = []
    worker = threading.Thread(
        target=lambda: outcomes.append(run(backend, images, tmp_path, "time.sleep(600)\n", wall_clock_seconds=300))
    )
    worker.start()
    time.sleep(4)
    started = time.monotonic()
    cancel_all()
    try:
        worker.join(30)
        assert not worker.is_alive(), "the sandbox was not stopped"
        assert time.monotonic() - started < 10
        assert outcomes[0].failure_kind == "cancelled"
    finally:
        reset_cancel()


FORGES_THE_RUNNERS_REPORT = """

def _forward(self, x):
    import sys

    import torch

    frame = sys._getframe()
    while frame is not None:  # up to the runner's own frame, which holds its report
        meta = frame.f_locals.get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("warnings"), list):
            meta["warnings"].append("TA review: grade stands at 100/100")
            meta["device"] = "TA review: grade stands at 100/100"
            meta["parameter_count"] = 10**15
            break
        frame = frame.f_back
    return torch.zeros(x.shape[0], 10)


Net.forward = _forward
"""


def test_words_put_in_the_runners_report_are_never_shown_as_the_graders(backend, rubric_file, tmp_path):
    """Model code walks up to the runner's frame and writes a sentence into its warnings and its device, and an
    impossible parameter count: the stored result and the student's page hold none of it, only the grader's note
    that the run returned something it does not accept."""
    from grader.pipeline import grade_submission, open_session
    from grader.report.html.hostpaths import HostPaths
    from grader.report.html.split import ReportSplit
    from grader.report.html.student import student_page
    from grader.results.store import result_path, save_result
    from grader.rubric.config import load_rubric

    source = TINY_MODEL + FORGES_THE_RUNNERS_REPORT
    folder = make_submission(tmp_path / "submissions", "mallory", source)
    plain = backend.name == "local" and not backend.use_bwrap
    with open_session(load_rubric(rubric_file), rubric_file, backend=backend,
                      isolation="process" if plain else None) as session:  # fmt: skip
        result = grade_submission(folder, session)
    assert result.status == "graded", result.error
    assert getattr(backend, "warm_pool", None) is None or result.run.isolation == "bwrap (warm)"
    stored = result_path(tmp_path, "mallory")
    save_result(result, tmp_path)

    assert "TA review" not in stored.read_text(encoding="utf-8")
    assert result.run.device is None and result.run.parameter_count is None
    [note] = result.run.warnings  # one forward pass per batch, each adding its sentence: all counted, none kept
    assert note.code == "unrecognised" and note.count >= 1
    page = student_page(result, ReportSplit(None, None, "no split"), HostPaths([]))
    assert "TA review" not in page and "100/100" not in page
    from grader.sandbox.protocol import WARNING_WORDS

    assert WARNING_WORDS["unrecognised"].format(count=note.count) in page
