"""grade --all on a Ray cluster: a real local cluster started by these tests (a head that runs no tasks and
worker node processes), the class graded in the local bubblewrap sandbox on the workers.

The head gets no CPUs, so every task lands on a worker node: that is how the worker-kill test knows where
its slow student runs. Each test that needs the cluster is marked integration and ray; without Ray
installed they skip, and under CI they fail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import (
    INTEGRITY_ON,
    TINY_MODEL,
    FakeBackend,
    bwrap_available,
    fake_submission,
    make_submission,
    require_tool,
    write_npz,
    write_rubric,
)
from rich.console import Console

from grader.batch.executors.base import EXECUTORS, Executor, ExecutorError, Finished
from grader.batch.executors.ray import pack_submission, unpack_submission
from grader.batch.run import BatchOptions, grade_all
from grader.cli import main as cli_main
from grader.datasets import LabelledImages
from grader.pipeline import grade_submission
from grader.results.store import load_result

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
STARTED = "Ray runtime started"
HANGS = "import time\ntime.sleep(600)\n" + TINY_MODEL
BREAKS = "raise RuntimeError('bob breaks at import')\n" + TINY_MODEL
SLOW_SECONDS = 25
SLOW = f"import time\ntime.sleep({SLOW_SECONDS})\n" + TINY_MODEL


def ray_installed() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return RAY.is_file()


# --- a local cluster of our own processes ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalCluster:
    """`ray start --block` processes, each the leader of a process group of its own, so that teardown stops
    exactly what this test started (never `ray stop`, which would stop every Ray on the machine)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen] = []

    def start_head(self) -> None:
        self._start("head", ["--head", f"--port={self.port}", "--num-cpus=0", f"--temp-dir={self.folder}",
                             "--include-dashboard=false"])  # fmt: skip

    def add_worker(self) -> subprocess.Popen:
        return self._start(f"worker{len(self.nodes)}", [f"--address={self.address}", "--num-cpus=1"])

    def _start(self, name: str, arguments: list[str]) -> subprocess.Popen:
        log = self.folder / f"{name}.log"
        command = [str(RAY), "start", *arguments, "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
        command += ["--object-store-memory=100000000", "--block"]
        with open(log, "w") as stream:
            node = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes.append(node)
        deadline = time.monotonic() + 120
        while STARTED not in log.read_text(errors="replace"):
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start {name} failed:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        return node

    def raylet_of(self, node: subprocess.Popen) -> int:
        return next(pid for pid in processes_in_group(node.pid) if process_name(pid) == "raylet")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)  # ray start --block stops the processes it started
        for node in self.nodes:
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
            for pid in processes_in_group(node.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # after the name, which may hold spaces


def processes_in_group(group: int) -> list[int]:
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    return [pid for pid in pids if (fields := _stat(pid)) and int(fields[2]) == group]


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        fields = _stat(pid)
        if fields is None:
            return False
        pid = int(fields[1])
        if pid == ancestor:
            return True
    return False


def sandbox_of(student: str, raylet: int) -> int | None:
    """The bubblewrap process running this student's submission under that raylet, if one is running."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or process_name(int(entry.name)) != "bwrap":
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(f"/{student}".encode()) for part in command) and descends_from(int(entry.name), raylet):
            return int(entry.name)
    return None


@pytest.fixture(scope="module")
def cluster():
    require_tool(ray_installed(), 'grading on Ray needs the cluster extra: pip install -e ".[cluster]"')
    require_tool(bwrap_available(), "the cluster's nodes grade in the local sandbox, which needs bubblewrap")
    folder = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # Ray's socket paths must stay short
    local = LocalCluster(folder)
    try:
        local.start_head()
        local.add_worker()
        yield local
    finally:
        local.stop()
        shutil.rmtree(folder, ignore_errors=True)


# --- the class ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split() -> LabelledImages:
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)
    return LabelledImages(images=images, labels=np.arange(64, dtype=np.int64) % 10, source="ray class")


def write_class(root: Path, split: LabelledImages, students: dict[str, tuple[str, int]], **sections) -> SimpleNamespace:
    write_npz(split, root / "split.npz")
    rubric = write_rubric(root / "rubric.yaml", Path("split.npz"), split, **sections)
    for student, (source, seed) in students.items():
        make_submission(root / "submissions", student, source, seed=seed)
    return SimpleNamespace(rubric=rubric, submissions=root / "submissions", results=root / "results")


def grade_class(paths: SimpleNamespace, results: Path, **options):
    console = Console(file=io.StringIO(), width=200)
    folders = {"rubric": paths.rubric, "submissions": paths.submissions, "results": results}
    batch = BatchOptions(**folders, sandbox="local", **options)
    return grade_all(batch, console), console.file.getvalue()


def stored(results: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(results.glob("*.json"))}


def verdict(result: dict) -> tuple:
    return (result["status"], result["error_kind"], result["accuracy"], result["points"], result["final_points"])


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.integration
def test_a_class_graded_on_ray_matches_the_local_pool_with_a_failing_and_a_hanging_model(cluster, split, tmp_path):
    students = {"ada": (TINY_MODEL, 0), "bob": (BREAKS, 1), "cy": (HANGS, 2)}
    paths = write_class(tmp_path, split, students, integrity=INTEGRITY_ON)  # the secret travels with the session
    report, output = grade_class(paths, tmp_path / "ray-results", executor="ray", address=cluster.address, timeout=20)
    assert report.sandbox_runs == 3 and not report.crashed and not report.interrupted, output
    assert report.where == f"the Ray cluster at {cluster.address}"
    on_ray = stored(tmp_path / "ray-results")
    assert sorted(on_ray) == ["ada", "bob", "cy"], "exactly one result file per student"
    assert on_ray["ada"]["status"] == "graded" and on_ray["ada"]["run"]["backend"] == "local"
    # In the sandbox on the node, never a plain process; warm, as the rubric's default says.
    assert on_ray["ada"]["run"]["isolation"] == "bwrap (warm)"
    assert on_ray["bob"]["status"] == "error" and "bob breaks at import" in on_ray["bob"]["error"]
    assert on_ray["cy"]["status"] == "error" and on_ray["cy"]["error_kind"] == "timeout"
    assert on_ray["ada"]["inputs"] == load_result(tmp_path / "ray-results" / "ada.json").inputs.model_dump()

    grade_class(paths, tmp_path / "local-results", executor="local", workers=2, timeout=20)
    on_this_machine = stored(tmp_path / "local-results")
    assert {name: verdict(result) for name, result in on_ray.items()} == {
        name: verdict(result) for name, result in on_this_machine.items()
    }
    assert on_ray["ada"]["predictions_sha256"] == on_this_machine["ada"]["predictions_sha256"]
    assert on_ray["ada"]["integrity"] == on_this_machine["ada"]["integrity"] is not None, "the same secret probes"
    assert on_ray["ada"]["inputs"] == on_this_machine["ada"]["inputs"], "the same inputs, so resume works across both"

    again, _ = grade_class(paths, tmp_path / "ray-results", executor="ray", address=cluster.address, timeout=20)
    assert again.sandbox_runs == 0 and again.planned["keep"] == 3, "a second run on the cluster regrades nobody"


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.integration
def test_sigterm_on_the_driver_cancels_the_cluster_tasks_keeps_saved_results_and_exits_130(cluster, split, tmp_path):
    paths = write_class(tmp_path, split, {"ada": (TINY_MODEL, 0), "zed": (HANGS, 4)})
    grading = subprocess.Popen(
        grade_command(paths, cluster.address, "--timeout", "300"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        raylet = cluster.raylet_of(cluster.nodes[-1])
        deadline = time.monotonic() + 240
        while not (paths.results / "ada.json").exists() or sandbox_of("zed", raylet) is None:
            assert grading.poll() is None and time.monotonic() < deadline, "ada never finished or zed never started"
            time.sleep(0.2)
        grading.send_signal(signal.SIGTERM)
        output, _ = grading.communicate(timeout=120)
    finally:
        if grading.poll() is None:
            grading.kill()
    assert grading.returncode == 130, output
    assert "interrupted: finished results are saved" in output
    assert sorted(stored(paths.results)) == ["ada"], "ada's result stays; zed, cancelled, has none"
    deadline = time.monotonic() + 60
    while sandbox_of("zed", raylet) is not None:
        assert time.monotonic() < deadline, "zed's sandbox still runs on the node after the cancel"
        time.sleep(0.5)


@pytest.mark.ray
@pytest.mark.integration
def test_a_submission_no_node_can_hold_is_refused_at_once_instead_of_queued_for_ever(cluster, split, tmp_path):
    sandbox = {"backend": "local", "device": "cpu", "batch_size": 16, "limits": {"cpus": 4, "wall_clock_seconds": 60}}
    paths = write_class(tmp_path, split, {"ada": (TINY_MODEL, 0)}, sandbox=sandbox)
    with pytest.raises(ExecutorError, match=r"no node of the Ray cluster at .* has 4 CPU\(s\)"):
        grade_class(paths, tmp_path / "results", executor="ray", address=cluster.address)
    assert not list((tmp_path / "results").glob("*.json"))


def grade_command(paths: SimpleNamespace, address: str, *options: str) -> list[str]:
    command = [sys.executable, "-m", "grader", "grade", "--all", "--executor", "ray", "--address", address, *options]
    folders = ["--submissions", str(paths.submissions), "--results", str(paths.results)]
    return [*command, "--rubric", str(paths.rubric), *folders]


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.integration
def test_a_task_on_a_killed_worker_node_is_retried_on_another_and_each_student_is_graded_once(cluster, split, tmp_path):
    # Cold sandboxes: the test finds slow-sam's by the folder on its bubblewrap command line.
    cold = {"backend": "local", "device": "cpu", "batch_size": 16, "warm": False}
    paths = write_class(tmp_path, split, {"ada": (TINY_MODEL, 0), "slow-sam": (SLOW, 3)}, sandbox=cold)
    command = grade_command(paths, cluster.address)
    grading = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        worker = cluster.nodes[-1]
        raylet = cluster.raylet_of(worker)
        deadline = time.monotonic() + 240
        while sandbox_of("slow-sam", raylet) is None:
            assert grading.poll() is None and time.monotonic() < deadline, "slow-sam never started on the worker"
            time.sleep(0.2)
        os.kill(raylet, signal.SIGKILL)  # the node dies with slow-sam's sandbox running on it
        killed_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        cluster.add_worker()
        output, _ = grading.communicate(timeout=300)
    finally:
        if grading.poll() is None:
            grading.kill()
    assert grading.returncode == 0, output
    results = stored(paths.results)
    assert sorted(results) == ["ada", "slow-sam"], "exactly one result file per student"
    assert all(result["status"] == "graded" for result in results.values()), output
    assert dt.datetime.fromisoformat(results["slow-sam"]["timings"]["graded_at"]) >= killed_at, "graded by the retry"
    class_log = next((paths.results / "logs").glob("grade-all-*.log")).read_text()
    for student in results:
        assert class_log.count(f"'{student}': graded,") == 1, class_log


# --- without a cluster ----------------------------------------------------------------------------


class TwiceExecutor(Executor):
    """Reports every student twice, as a cluster may after retrying a task whose first run did finish."""

    name = "twice"

    def grade(self, plans, session, started):
        for plan in plans:
            first = grade_submission(plan.folder, session, plan.student)
            yield Finished(plan, result=first)
            yield Finished(plan, result=first.model_copy(update={"accuracy": 0.0}))

    def cancel(self):
        return []


def test_a_second_outcome_for_a_student_is_ignored_and_the_first_saved_once(monkeypatch, rubric_file, submissions):
    monkeypatch.setitem(EXECUTORS._entries, "twice", (TwiceExecutor, None, 0))
    fake_submission(submissions, "ada")
    results = submissions.parent / "results"
    options = {"rubric": rubric_file, "submissions": submissions, "results": results, "sandbox": FakeBackend()}
    report = grade_all(BatchOptions(**options, executor="twice"), Console(file=io.StringIO()))
    assert report.written == ["ada"] and report.sandbox_runs == 1 and not report.crashed
    assert load_result(results / "ada.json").accuracy > 0, "the first outcome is the one kept"


def test_the_ray_executor_without_ray_installed_says_how_to_install_it(monkeypatch, rubric_file, submissions, capsys):
    monkeypatch.setattr("grader.batch.executors.ray.ray", None)
    with pytest.raises(ExecutorError, match=r"pip install -e \"\.\[cluster\]\""):
        EXECUTORS.get("ray").check_available()
    command = ["grade", "--all", "--executor", "ray", "--rubric", str(rubric_file), "--submissions", str(submissions)]
    assert cli_main([*command, "--results", str(submissions.parent / "results")]) == 2
    assert "needs the Ray package" in capsys.readouterr().err


def test_a_submission_travels_to_a_node_as_its_files_and_no_name_leaves_its_folder(tmp_path):
    folder = make_submission(tmp_path / "sent", "ada")
    (folder / "notes").mkdir()
    (folder / "notes" / "answers.md").write_text("Q1: ...")
    (folder / "link.py").symlink_to(folder / "model.py")
    files = pack_submission(folder)
    assert sorted(files) == ["model.py", "notes/answers.md", "weights.pth"], "links are left out, as hashing does"
    unpack_submission(files, tmp_path / "node" / "ada")
    assert (tmp_path / "node" / "ada" / "weights.pth").read_bytes() == (folder / "weights.pth").read_bytes()
    for name in ("../outside.py", "/etc/passwd", "a/../../b", "a\\..\\b"):
        with pytest.raises(ValueError, match="leaves its folder"):
            unpack_submission({name: b"x"}, tmp_path / "node" / f"bad{len(name)}")
    assert not (tmp_path / "node" / "outside.py").exists()


def test_the_cli_keeps_the_executor_to_class_runs_and_the_address_to_ray():
    assert cli_main(["grade", "ada", "--executor", "ray"]) == 2
    assert cli_main(["grade", "--all", "--address", "head:6379"]) == 2


def test_executors_are_chosen_by_name_with_a_suggestion_and_their_registry_imports_nothing_heavy():
    assert EXECUTORS.names() == ["local", "ray"]
    with pytest.raises(ExecutorError, match="unknown executor 'rey'; did you mean 'ray'"):
        EXECUTORS.get("rey")
    code = "import sys, grader.batch.executors.base\nprint([m for m in ('torch', 'ray') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("warm", [True, False])
def test_a_node_opens_the_drivers_session_with_every_rubric_setting(warm, split, tmp_path):
    """The node's session comes from open_session, as the driver's does: nothing the rubric says is dropped."""
    from helpers import bwrap_available, require_tool

    from grader.batch.executors.ray import _open_node_session, session_spec
    from grader.pipeline import open_session
    from grader.rubric.config import load_rubric

    require_tool(bwrap_available(), "bubblewrap is not installed or cannot create namespaces here")
    sandbox = {"backend": "local", "device": "cpu", "batch_size": 8, "warm": warm, "limits": {"wall_clock_seconds": 33}}
    paths = write_class(tmp_path, split, {}, sandbox=sandbox, integrity=INTEGRITY_ON)
    rubric = load_rubric(paths.rubric)
    with open_session(rubric, paths.rubric, timeout_seconds=21) as driver:
        node = _open_node_session(session_spec(driver))
    assert (node.backend.warm_pool is not None) is warm
    assert (node.backend.name, node.backend.isolation) == (driver.backend.name, driver.backend.isolation)
    assert node.rubric.content_hash() == driver.rubric.content_hash()
    assert node.rubric.sandbox == driver.rubric.sandbox
    assert node.timeout_seconds == 21 and node.baselines == driver.baselines and node.secret == driver.secret
    assert node.split_sha256 == driver.split_sha256
    assert node.integrity_not_measured == driver.integrity_not_measured
    assert node.rubric_path.parent in node.hidden_paths  # the rubric and the secret beside it stay out of reach
