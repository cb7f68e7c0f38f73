"""The grader's own reliability: no stall between threads and sandboxes, interrupts that stop
everything at once, deadlines on host-side work, and the isolation a grading run insists on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    TINY_MODEL,
    FakeBackend,
    bwrap_available,
    docker_backend,
    edit_rubric,
    make_submission,
    require_tool,
    sandbox_containers,
)

from grader.pipeline import GradedItem, grade_submission, open_session
from grader.rubric.config import load_rubric

REPO = Path(__file__).resolve().parents[1]
ANSWERS = (
    "1. Yes: an autoencoder learns a compressed code of its input without labels.\n"
    "2. They learn features from raw pixels, given large labelled datasets and GPUs.\n"
    "3. They need much data and compute, overfit small sets and are hard to interpret.\n"
    "4. They approximate nonlinear functions that fit the data well.\n"
)
SLEEPER = "import time\ntime.sleep(600)\n"


@pytest.mark.integration
def test_sandboxes_start_while_another_thread_runs_blas(rubric_file, submissions):
    """The first round's stall: a fork from one thread while another spins in OpenBLAS."""
    stop = threading.Event()

    def spin():
        matrix = np.random.default_rng(0).random((300, 300))
        while not stop.is_set():
            matrix @ matrix

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    results = []

    def grade_several():
        with open_session(load_rubric(rubric_file), rubric_file, isolation="process") as session:
            for number in range(6):
                folder = make_submission(submissions, f"s{number}")
                (folder / "answers.md").write_text(ANSWERS)
                results.append(grade_submission(folder, session))

    grading = threading.Thread(target=grade_several, daemon=True)
    grading.start()
    grading.join(300)
    stop.set()
    assert not grading.is_alive(), f"grading stalled after {len(results)} of 6 students"
    assert [result.status for result in results] == ["graded"] * 6


class Hanging(GradedItem):
    """An item whose scorer never returns, as a stuck library or a pathological file would make it."""

    name, rubric_section, needs_sandbox = "hanging", "exercise2", False

    def __init__(self) -> None:
        self.release = threading.Event()

    def max_points(self, rubric) -> float:
        return 3.0

    def deadline_seconds(self, rubric) -> float:
        return 0.5

    def score(self, given):
        self.release.wait()


def test_an_item_scored_past_its_deadline_costs_only_that_item(rubric_file, submissions):
    from grader.pipeline.items import ItemInput
    from grader.pipeline.submission import BackgroundScore
    from grader.results.model import InputHashes, Result

    item = Hanging()
    with open_session(load_rubric(rubric_file), rubric_file, backend=FakeBackend()) as session:
        given = ItemInput(
            session, submissions, None, Result(student="x", status="error", inputs=InputHashes(grader_version="1"))
        )
        started = time.monotonic()
        score = BackgroundScore(item, given).result()
    item.release.set()
    assert time.monotonic() - started < 5
    assert score.points.points == 0 and score.points.max_points == 3.0
    assert "took longer than 0.5 s" in score.points.reason and "needs review" in score.points.reason


def test_answers_scored_within_the_deadline_are_kept(rubric_file, submissions):
    folder = make_submission(submissions, "writer")
    (folder / "answers.md").write_text(ANSWERS)
    with open_session(load_rubric(rubric_file), rubric_file, backend=FakeBackend()) as session:
        result = grade_submission(folder, session)
    exercise2 = next(item for item in result.items if item.item == "exercise2")
    assert exercise2.points > 0 and "took longer" not in exercise2.reason


# --- isolation a grading run insists on ------------------------------------------------------


def run_grader(*arguments: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "grader", *arguments], capture_output=True, text=True, env=environment, cwd=cwd
    )


@pytest.mark.integration
def test_ta_grading_refuses_a_plain_process_unless_asked_in_so_many_words(rubric_file, submissions, tmp_path):
    make_submission(submissions, "alice")
    common = ["grade", "alice", "--rubric", str(rubric_file), "--submissions", str(submissions)]
    common += ["--results", str(tmp_path / "results")]
    plain = {"GRADER_LOCAL_ISOLATION": "process"}

    refused = run_grader(*common, env=plain)
    assert refused.returncode == 2
    assert "--isolation process" in refused.stderr and "NOT a security boundary" in refused.stderr
    assert not (tmp_path / "results" / "alice.json").exists()

    accepted = run_grader(*common, "--isolation", "process", env=plain)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    stored = json.loads((tmp_path / "results" / "alice.json").read_text())
    assert stored["run"]["isolation"].startswith("process")
    assert "not a security boundary" in accepted.stdout

    summary = run_grader("summary", "--results", str(tmp_path / "results"))
    assert "1 graded without a sandbox" in summary.stdout, summary.stdout


# --- one Ctrl-C or SIGTERM stops a class run ---------------------------------------------------


def class_with_sleepers(submissions: Path) -> None:
    make_submission(submissions, "a-quick")
    for name in ("b-sleeper", "c-sleeper", "d-sleeper"):
        folder = make_submission(submissions, name, SLEEPER + TINY_MODEL)
        (folder / "answers.md").write_text(ANSWERS)


def sandbox_processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in command and b"runner.py" in command:
            found.append(int(entry.name))
    return found


@pytest.mark.integration
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("sandbox", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_one_interrupt_stops_every_sandbox_and_keeps_finished_results(
    rubric_file, submissions, tmp_path, number, sandbox
):
    if sandbox == "local":
        require_tool(bwrap_available(), "bubblewrap is not installed or cannot create namespaces here")
    else:
        docker_backend().close()
    class_with_sleepers(submissions)
    results = tmp_path / "results"
    command = [sys.executable, "-m", "grader", "grade", "--all", "--rubric", str(rubric_file)]
    command += ["--submissions", str(submissions), "--results", str(results), "--workers", "2", "--sandbox", sandbox]
    process = subprocess.Popen(
        command, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    while not (results / "a-quick.json").exists():
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "the quick student was never graded"
        time.sleep(0.2)
    time.sleep(3)  # two sleepers are now inside their sandboxes
    process.send_signal(number)
    interrupted = time.monotonic()
    try:
        code = process.wait(timeout=30)
    finally:
        process.kill()
    output = process.stdout.read().decode()
    assert time.monotonic() - interrupted < 10, output
    assert code == 130, output
    assert sorted(p.name for p in results.glob("*.json")) == ["a-quick.json"]
    assert sandbox_processes(str(submissions)) == []
    if sandbox == "docker":
        assert sandbox_containers() == []


@pytest.mark.parametrize(
    "backend", [pytest.param("local", marks=pytest.mark.integration), pytest.param("docker", marks=pytest.mark.docker)]
)
def test_a_model_that_sleeps_at_import_stops_at_the_import_limit_not_the_wall_clock(backend, rubric_file, submissions):
    if backend == "local":
        require_tool(bwrap_available(), "bubblewrap is not installed or cannot create namespaces here")
    else:
        backend = docker_backend()
    limits = {"import_seconds": 3, "wall_clock_seconds": 120}
    edit_rubric(rubric_file, lambda rubric: rubric["sandbox"]["limits"].update(limits))
    trains = "import time\nimport torch\ntorch.optim.SGD([torch.zeros(1, requires_grad=True)]).zero_grad()\n"
    folder = make_submission(submissions, "sleepy", trains + "time.sleep(600)\n" + TINY_MODEL)
    with open_session(load_rubric(rubric_file), rubric_file, backend=backend) as session:
        started = time.monotonic()
        result = grade_submission(folder, session)
        seconds = time.monotonic() - started
    assert result.error_kind == "timeout"
    assert result.error.startswith(
        "importing model.py took longer than 3 s (the import limit, sandbox.limits.import_seconds); "
        "the model must not train or load data at import"
    )
    assert result.error.endswith("(model.py line 3 calls zero_grad() at import)")
    assert seconds < 60, f"stopped after {seconds:.0f} s: the wall clock (120 s), not the import limit, stopped it"


@pytest.mark.integration
def test_the_import_limit_leaves_a_quick_import_and_a_slow_inference_alone(rubric_file, submissions):
    require_tool(bwrap_available(), "bubblewrap is not installed or cannot create namespaces here")
    edit_rubric(rubric_file, lambda rubric: rubric["sandbox"]["limits"].update(import_seconds=2))
    slow_forward = TINY_MODEL.replace("def forward(self, x):", "def forward(self, x):\n        time.sleep(1.5)")
    folder = make_submission(submissions, "patient", "import time\n" + slow_forward)
    (folder / "answers.md").write_text(ANSWERS)
    with open_session(load_rubric(rubric_file), rubric_file, backend="local") as session:
        result = grade_submission(folder, session)
    assert result.status == "graded", result.error


def test_changing_the_import_limit_reruns_the_sandbox_section_and_nothing_else(rubric_file):
    before = load_rubric(rubric_file).section_hashes()
    edit_rubric(rubric_file, lambda rubric: rubric["sandbox"]["limits"].update(import_seconds=60))
    assert load_rubric(rubric_file).section_hashes() == before  # the default, written out, changes nothing
    edit_rubric(rubric_file, lambda rubric: rubric["sandbox"]["limits"].update(import_seconds=30))
    after = load_rubric(rubric_file).section_hashes()
    assert [section for section in after if after[section] != before[section]] == ["sandbox"]
