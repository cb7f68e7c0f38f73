"""The warm local sandbox (grader/sandbox/warm.py, inside/zygote.py): one sandbox per worker imports torch once,
and each submission runs in a child of its own. Everything one student leaves behind must be gone for the next,
and the child must be as closed as a cold sandbox. The hostile suite also runs through it
(tests/test_sandbox_hostile.py, bwrap-warm)."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_MODEL, bwrap_available, make_submission, require_tool, sandbox_job

from grader.rubric.config import load_rubric
from grader.sandbox.local import LocalBackend
from grader.sandbox.protocol import SandboxJob

WARM = "bwrap (warm)"
# model.py reports what it found on stderr, one JSON line the test reads back from the outcome.
REPORT = """
import json, os, sys
def report(**found):
    sys.stderr.write("FOUND " + json.dumps(found) + "\\n")
    sys.stderr.flush()
"""


@pytest.fixture
def warm_backend():
    require_tool(bwrap_available(), "bubblewrap is not installed or cannot create namespaces here")
    backend = LocalBackend(force_plain_process=False, warm=True)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("split") / "images.npy"
    np.save(path, np.random.default_rng(5).integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8))
    return path


def run(backend, images, folder: Path, name: str, prelude: str = "", **limits):
    submission = make_submission(folder, name, REPORT + textwrap.dedent(prelude) + TINY_MODEL)
    return backend.run(warm_job(submission, images, **limits))


def warm_job(submission: Path, images: Path, **limits) -> SandboxJob:
    return sandbox_job(submission, images, batch_size=4, **{"wall_clock_seconds": 60, "memory_mb": 2048, **limits})


# A checkout or a Python under /tmp (as in a CI clone) stays visible there, read-only, as in a cold run.
HOST_FOLDERS_IN_TMP = {
    Path(path).parts[2] for path in (sys.prefix, str(Path(__file__).resolve().parents[1])) if path.startswith("/tmp/")
}


def found(outcome) -> dict:
    lines = [line for line in outcome.stderr_tail.splitlines() if line.startswith("FOUND ")]
    assert lines, (outcome.failure, outcome.stderr_tail)
    return json.loads(lines[-1].removeprefix("FOUND "))


@pytest.mark.integration
def test_files_a_student_leaves_in_memory_folders_are_gone_for_the_next(warm_backend, images, tmp_path):
    first = run(
        warm_backend,
        images,
        tmp_path,
        "alice",
        """
    for folder in ("/scratch", "/tmp", "/dev/shm", os.getcwd()):
        with open(os.path.join(folder, "left-by-alice"), "w") as stream:
            stream.write("secret")
    report(wrote=sorted(os.listdir("/tmp")))
    """,
    )
    assert first.isolation == WARM and first.failure is None, first.failure
    assert found(first)["wrote"] == sorted(["left-by-alice", *HOST_FOLDERS_IN_TMP])
    second = run(
        warm_backend,
        images,
        tmp_path,
        "bob",
        """
    report(listed={folder: sorted(os.listdir(folder)) for folder in ("/scratch", "/tmp", "/dev/shm")})
    """,
    )
    assert second.isolation == WARM and second.failure is None, second.failure
    assert found(second)["listed"] == {"/scratch": [], "/tmp": sorted(HOST_FOLDERS_IN_TMP), "/dev/shm": []}
    assert warm_backend.warm_pool.zygotes_started == 1  # the same zygote ran both


@pytest.mark.integration
def test_a_background_process_is_dead_before_the_next_student_starts(warm_backend, images, tmp_path):
    first = run(
        warm_backend,
        images,
        tmp_path,
        "alice",
        """
    import ctypes, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            ctypes.CDLL(None).prctl(15, b"lingerer", 0, 0, 0)  # PR_SET_NAME
            signal_ignored = __import__("signal")
            for number in (1, 2, 15):
                signal_ignored.signal(number, signal_ignored.SIG_IGN)
            time.sleep(600)
        os._exit(0)
    time.sleep(0.5)
    def named(name):
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if open(f"/proc/{pid}/comm").read().strip() == name:
                    found.append(pid)
            except OSError:
                pass
        return found
    report(seen=len(named("lingerer")))
    """,
    )
    assert first.isolation == WARM and first.failure is None, first.failure
    assert found(first)["seen"] == 1  # the search below can see such a process
    second = run(
        warm_backend,
        images,
        tmp_path,
        "bob",
        """
    seen = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            seen += open(f"/proc/{pid}/comm").read().strip() == "lingerer"
        except OSError:
            pass
    report(seen=seen)
    """,
    )
    assert second.isolation == WARM and second.failure is None, second.failure
    assert found(second)["seen"] == 0


@pytest.mark.integration
def test_the_inbox_and_the_previous_submission_are_out_of_reach(warm_backend, images, tmp_path):
    alice = tmp_path / "alice-class"
    first_folder = make_submission(alice, "alice")
    (first_folder / "alice-secret.txt").write_text("alice's notes")
    assert warm_backend.run(warm_job(first_folder, images)).failure is None
    second = run(
        warm_backend,
        images,
        tmp_path,
        "bob",
        """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    def listing(path):
        try:
            return sorted(os.listdir(path))
        except OSError as error:
            return error.strerror
    hits = []
    for top in ("/", "/submission", "/data", "/output", "/scratch", "/tmp", "/dev/shm", "/sandbox"):
        for root, folders, files in os.walk(top):
            hits += [os.path.join(root, name) for name in files if "alice" in name]
            if root == "/":
                folders[:] = []
    before = listing("/inbox")
    plain_umount = libc.umount2(b"/inbox", 2) == 0
    # A user and mount namespace of its own: root there, but the inherited mounts are locked.
    unshared = libc.unshare(0x10000000 | 0x20000) == 0
    nested_umount = libc.umount2(b"/inbox", 2) == 0
    status = open("/proc/self/status").read()
    report(hits=hits, inbox=before, plain_umount=plain_umount, unshared=unshared, nested_umount=nested_umount,
           inbox_after=listing("/inbox"), submission=sorted(os.listdir("/submission")))
    """,
    )
    assert second.isolation == WARM and second.failure is None, second.failure
    seen = found(second)
    assert seen["hits"] == []
    assert seen["submission"] == ["model.py", "weights.pth"]
    assert seen["inbox"] in ([], "Permission denied")
    assert not seen["plain_umount"] and not seen["nested_umount"]
    assert seen["inbox_after"] in ([], "Permission denied")


@pytest.mark.integration
def test_no_other_process_of_the_warm_sandbox_can_be_read_or_written(warm_backend, images, tmp_path):
    """/proc shows the zygote and the job's own init; their memory, environment and files stay closed."""
    outcome = run(
        warm_backend,
        images,
        tmp_path,
        "mallory",
        """
    me = os.readlink("/proc/self")
    others, opened = [], []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if pid == me:
            continue
        others.append(pid)
        for name, mode in (("mem", "r+b"), ("mem", "rb"), ("environ", "rb"), ("cwd/.", None), ("root/.", None)):
            try:
                if mode:
                    open(f"/proc/{pid}/{name}", mode).close()
                else:
                    os.listdir(f"/proc/{pid}/{name}")
                opened.append(f"{pid}/{name}")
            except OSError:
                pass
    report(others=len(others), opened=opened)
    """,
    )
    assert outcome.isolation == WARM and outcome.failure is None, outcome.failure
    seen = found(outcome)
    assert seen["others"] >= 2  # at least the zygote and the job's namespace init are there to try
    assert seen["opened"] == []


@pytest.mark.integration
def test_no_network_no_capabilities_and_the_runs_own_limits(warm_backend, images, tmp_path):
    outcome = run(
        warm_backend,
        images,
        tmp_path,
        "carol",
        """
    import resource, socket
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=3)
        connected = True
    except OSError:
        connected = False
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    report(
        interfaces=sorted(name for _, name in socket.if_nameindex()),
        connected=connected,
        caps={key: int(status[key], 16) for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
        no_new_privs=int(status["NoNewPrivs"]),
        cpu=resource.getrlimit(resource.RLIMIT_CPU),
        fsize=resource.getrlimit(resource.RLIMIT_FSIZE),
        data=resource.getrlimit(resource.RLIMIT_DATA),
        core=resource.getrlimit(resource.RLIMIT_CORE),
        uid=os.getuid(),
        home=os.environ.get("HOME"),
    )
    """,
        cpu_seconds=77,
        file_size_mb=33,
        memory_mb=1999,
    )
    assert outcome.isolation == WARM and outcome.failure is None, outcome.failure
    seen = found(outcome)
    assert seen["interfaces"] == ["lo"] and not seen["connected"]
    assert set(seen["caps"].values()) == {0} and seen["no_new_privs"] == 1
    assert seen["cpu"] == [77, 77]
    assert seen["fsize"] == [33 * 2**20] * 2
    assert seen["data"] == [1999 * 2**20] * 2
    assert seen["core"] == [0, 0]
    assert seen["uid"] == 65534 and seen["home"] == "/scratch"


@pytest.mark.integration
def test_the_zygote_survives_a_crashing_student_and_a_killed_zygote_is_replaced(warm_backend, images, tmp_path):
    crashed = run(warm_backend, images, tmp_path, "crash", "os.kill(os.getpid(), 9)\n")
    assert crashed.isolation == WARM and crashed.failure_kind == "killed"
    after_crash = run(warm_backend, images, tmp_path, "after-crash")
    assert after_crash.isolation == WARM and after_crash.failure is None, after_crash.failure
    assert warm_backend.warm_pool.zygotes_started == 1
    [zygote] = warm_backend.warm_pool.idle()
    os.killpg(zygote.process.pid, signal.SIGKILL)
    zygote.process.wait()
    replaced = run(warm_backend, images, tmp_path, "after-kill")
    assert replaced.isolation == WARM and replaced.failure is None, replaced.failure
    assert warm_backend.warm_pool.zygotes_started == 2
    assert not (zygote.folder).exists()  # the dead zygote's folder is cleaned up


@pytest.mark.integration
def test_a_timed_out_student_takes_its_zygote_along(warm_backend, images, tmp_path):
    stuck = run(warm_backend, images, tmp_path, "stuck", "import time\ntime.sleep(600)\n", wall_clock_seconds=3)
    assert stuck.isolation == WARM and stuck.failure_kind == "timeout"
    assert warm_backend.warm_pool.idle() == []
    following = run(warm_backend, images, tmp_path, "next")
    assert following.isolation == WARM and following.failure is None
    assert warm_backend.warm_pool.zygotes_started == 2


@pytest.mark.integration
def test_warm_results_equal_cold_results_for_a_small_class(rubric_file, submissions, monkeypatch):
    require_tool(bwrap_available(), "bubblewrap is not installed or cannot create namespaces here")
    from helpers import edit_rubric

    from grader.pipeline import grade_submission, open_session

    # The integrity probes on: every student sees the images in an order of their own.
    edit_rubric(rubric_file, lambda data: data["integrity"].update(permute_order=True, perturbation_sample=1000))
    folders = [make_submission(submissions, f"s{seed}", seed=seed) for seed in range(3)]
    folders.append(make_submission(submissions, "broken", TINY_MODEL + "\nraise ValueError('no')\n"))
    results = {}
    for warm in (False, True):
        rubric = load_rubric(rubric_file)
        rubric.sandbox.warm = warm
        with open_session(rubric, rubric_file) as session:
            results[warm] = [grade_submission(folder, session) for folder in folders]
    assert {result.run.isolation for result in results[True] if result.run} == {WARM}
    assert {result.run.isolation for result in results[False] if result.run} == {"bwrap"}
    assert [result.status for result in results[True]] == ["graded"] * 3 + ["error"]
    drop = {"timings", "run"}
    assert [r.model_dump(exclude=drop) for r in results[True]] == [r.model_dump(exclude=drop) for r in results[False]]


@pytest.mark.integration
def test_the_environment_overrides_the_rubric(monkeypatch):
    require_tool(bwrap_available(), "bubblewrap is not installed or cannot create namespaces here")
    monkeypatch.setenv("GRADER_WARM_SANDBOX", "0")
    assert LocalBackend.configured(warm=True).warm_pool is None
    monkeypatch.setenv("GRADER_WARM_SANDBOX", "1")
    backend = LocalBackend.configured(warm=False)
    assert backend.warm_pool is not None
    backend.close()


def test_warm_mode_needs_bubblewrap():
    assert LocalBackend(force_plain_process=True, warm=True).warm_pool is None


def test_the_warm_setting_changes_no_section_hash(rubric_file):
    warm = load_rubric(rubric_file)
    cold = warm.model_copy(update={"sandbox": warm.sandbox.model_copy(update={"warm": False})})
    assert warm.sandbox.warm and not cold.sandbox.warm  # warm is the default
    assert warm.section_hashes() == cold.section_hashes()


@pytest.mark.integration
def test_parallel_workers_each_get_a_zygote_of_their_own(warm_backend, images, tmp_path):
    import threading

    outcomes = []
    # Both runs wait at the same point, so that neither zygote is free for the other.
    barrier = "import time\ntime.sleep(3)\n"
    workers = [
        threading.Thread(target=lambda n=n: outcomes.append(run(warm_backend, images, tmp_path, f"w{n}", barrier)))
        for n in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [outcome.isolation for outcome in outcomes] == [WARM, WARM]
    assert all(outcome.failure is None for outcome in outcomes), [outcome.failure for outcome in outcomes]
    assert warm_backend.warm_pool.zygotes_started == 2
    assert len(warm_backend.warm_pool.idle()) == 2


@pytest.mark.integration
def test_a_zygote_that_never_gets_ready_leaves_the_student_to_a_cold_run(warm_backend, images, tmp_path, monkeypatch):
    import tempfile

    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    monkeypatch.setattr("grader.sandbox.warm.READY_TIMEOUT_SECONDS", 0)
    outcome = run(warm_backend, images, tmp_path, "patient")
    assert outcome.isolation == "bwrap" and outcome.failure is None, outcome.failure
    assert warm_backend.warm_pool.broken and "did not start" in warm_backend.warm_pool.broken
    assert warm_backend.warm_pool.idle() == [] and list(private.iterdir()) == []  # its folder is gone too
    again = run(warm_backend, images, tmp_path, "next")
    assert again.isolation == "bwrap" and warm_backend.warm_pool.zygotes_started == 1  # no second attempt


@pytest.mark.integration
def test_a_submission_that_cannot_be_copied_runs_cold_and_the_zygote_stays(warm_backend, images, tmp_path):
    assert run(warm_backend, images, tmp_path, "first").isolation == WARM
    folder = make_submission(tmp_path, "piped")
    os.mkfifo(folder / "a-named-pipe")
    outcome = warm_backend.run(warm_job(folder, images))
    assert outcome.isolation == "bwrap" and outcome.failure is None, outcome.failure
    assert run(warm_backend, images, tmp_path, "after").isolation == WARM
    assert warm_backend.warm_pool.zygotes_started == 1 and not warm_backend.warm_pool.broken
    [zygote] = warm_backend.warm_pool.idle()
    assert list(zygote.inbox.iterdir()) == []


# Where bubblewrap made folders on the sandbox's own root to hold a read-only bind (Python under /root, /work, ...).
# Under /tmp (a CI clone's .venv) the folder is the student's own fresh /tmp instead: nothing there to seal.
PREFIX_TOP = "/" + sys.prefix.strip("/").split("/")[0]
SEALED = ("/", "/etc", "/dev") + ((PREFIX_TOP,) if PREFIX_TOP != "/tmp" else ())


@pytest.mark.integration
def test_a_student_cannot_change_the_root_the_next_student_sees(warm_backend, images, tmp_path):
    first = run(
        warm_backend,
        images,
        tmp_path,
        "mallory",
        f"""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    changed = []
    for folder in {SEALED!r}:
        try:
            with open(os.path.join(folder, "left-by-mallory"), "w") as stream:
                stream.write("x")
            changed.append("wrote " + folder)
        except OSError:
            pass
        try:
            os.chmod(folder, 0)
            changed.append("chmod " + folder)
        except OSError:
            pass
    # SysV IPC: a segment and a queue the next student could find.
    segment = libc.shmget(0, 2**20, 0o1666)
    queue = libc.msgget(0, 0o1666)
    report(changed=changed, segment=segment, queue=queue)
    """,
    )
    assert first.isolation == WARM and first.failure is None, first.failure
    assert found(first) == {"changed": [], "segment": -1, "queue": -1}
    second = run(
        warm_backend,
        images,
        tmp_path,
        "bob",
        f"""
    import modulefinder, stat
    report(
        modes={{folder: stat.S_IMODE(os.stat(folder).st_mode) for folder in {SEALED!r}}},
        left=[name for folder in ("/", "/etc", "/dev") for name in os.listdir(folder) if "mallory" in name],
        segments=open("/proc/sysvipc/shm").read().splitlines()[1:],
        queues=open("/proc/sysvipc/msg").read().splitlines()[1:],
    )
    """,
    )
    assert second.isolation == WARM and second.failure is None, second.failure
    seen = found(second)
    assert all(mode != 0 for mode in seen["modes"].values()), seen["modes"]
    assert seen["left"] == [] and seen["segments"] == [] and seen["queues"] == []


@pytest.mark.integration
def test_each_student_starts_from_a_seed_of_its_own(warm_backend, images, tmp_path):
    seeds = "import random, numpy, torch\nreport(torch=torch.initial_seed(), numpy=int(numpy.random.randint(2**31)))\n"
    first, second = (run(warm_backend, images, tmp_path, name, seeds) for name in ("alice", "bob"))
    assert first.isolation == second.isolation == WARM
    assert found(first)["torch"] != found(second)["torch"]
    assert found(first)["numpy"] != found(second)["numpy"]


@pytest.mark.integration
def test_a_failure_a_cold_run_would_not_make_is_graded_again_cold_and_retires_the_zygote(
    warm_backend, images, tmp_path, caplog
):
    # /inbox exists only in the warm sandbox: this model fails there as a damaged warm sandbox would make it.
    prelude = """
    if os.path.isdir("/inbox"):
        raise ModuleNotFoundError("No module named 'modulefinder'", name="modulefinder")
    """
    outcome = run(warm_backend, images, tmp_path, "unlucky", prelude)
    assert outcome.failure is None, outcome.failure
    assert outcome.isolation == "bwrap"
    assert outcome.cold_rerun and "modulefinder" in outcome.cold_rerun
    assert warm_backend.warm_pool.idle() == []  # that zygote is gone
    assert any("modulefinder" in record.getMessage() for record in caplog.records)
    assert run(warm_backend, images, tmp_path, "next").isolation == WARM
    assert warm_backend.warm_pool.zygotes_started == 2


@pytest.mark.integration
def test_a_missing_module_of_the_students_own_is_not_graded_twice(warm_backend, images, tmp_path):
    outcome = run(warm_backend, images, tmp_path, "typo", "import helpers_the_student_forgot\n")
    assert outcome.isolation == WARM and outcome.failure_kind is not None
    assert outcome.cold_rerun is None
    assert len(warm_backend.warm_pool.idle()) == 1
