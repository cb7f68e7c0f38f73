"""The class workflow: import-bb, grade --all (parallel, incremental, resumable), late policy, overrides, export.

The class is graded through the fake sandbox (helpers.FakeBackend), once per module, and copied into each
test; the tests marked integration grade in the real local sandbox.
"""

import csv
import io
import json
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from helpers import (
    HOSTILE,
    TINY_MODEL,
    BulkZip,
    FakeBackend,
    FakeFailure,
    assert_printed_literally,
    bwrap_available,
    edit_rubric,
    make_submission,
    require_tool,
    terminal,
    tiny_model,
    weights_bytes,
    write_npz,
    write_rubric,
)
from rich.console import Console

from grader.answers import Exercise2Rubric
from grader.batch.display import BatchDisplay, estimate_eta
from grader.batch.plan import CurrentInputs, plan_student
from grader.batch.run import BatchOptions, GpuPool, choose_workers, grade_all, visible_gpus
from grader.batch.summary import main as summary_main
from grader.batch.summary import render_summary, summarise
from grader.cli import main as cli_main
from grader.report.class_summary import ClassSummary
from grader.results.model import InputHashes, LateInfo, OverrideRecord, Points, Result
from grader.results.store import load_result
from grader.rubric.config import load_rubric
from grader.rubric.points import exercise1_points

ROOT = Path(__file__).resolve().parents[1]
LATE = {"due": "2022-11-01T23:59:00-06:00", "penalty_per_day": 0.1, "cap": 0.5}
EXPORT = {"column_name": "Lab 8", "column_id": "123456", "points_possible": 104}


def write_class_rubric(root: Path, tiny_split, **changes) -> Path:
    sections = {"late": LATE, "export": EXPORT, **changes}
    return write_rubric(root / "rubric.yaml", root / "split.npz", tiny_split, **sections)


# carol's model.py has a syntax error: the fake sandbox reports it as the runner would.
SYNTAX_ERROR = FakeFailure("syntax", "model.py line 16: SyntaxError: invalid syntax")


def class_sandbox() -> FakeBackend:
    """alice's and bob's logits follow from their weights (new weights, new predictions); carol's run fails."""
    return FakeBackend({"carol": SYNTAX_ERROR})


def run_batch(paths, **options) -> SimpleNamespace:
    """grade --all, through the fake sandbox unless `sandbox` names a real one."""
    options.setdefault("sandbox", class_sandbox())
    console = Console(file=io.StringIO(), width=200)
    batch = BatchOptions(rubric=paths.rubric, submissions=paths.submissions, results=paths.results, **options)
    report = grade_all(batch, console)
    return SimpleNamespace(report=report, output=console.file.getvalue())


def snapshot(results: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(results.glob("*.json"))}


def result_of(paths, student) -> Result:
    result = load_result(paths.results / f"{student}.json")
    assert result is not None
    return result


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, tiny_split):
    """alice on time, bob a day late, carol with a syntax error: imported from a bulk zip and graded once."""
    root = tmp_path_factory.mktemp("class")
    write_npz(tiny_split, root / "split.npz")
    rubric = write_class_rubric(root, tiny_split)
    bulk = BulkZip()
    due = datetime(2022, 11, 1, 23, 59)
    bulk.attempt("alice", due.replace(hour=20), {"model.py": TINY_MODEL.encode(), "weights.pth": weights_bytes(0)})
    bulk.attempt("bob", due.replace(day=2, hour=9), {"model.py": TINY_MODEL.encode(), "weights.pth": weights_bytes(1)})
    broken = (TINY_MODEL + "\ndef broken(:\n    pass\n").encode()
    bulk.attempt("carol", due.replace(hour=21), {"model.py": broken, "weights.pth": weights_bytes(2)})
    zip_path = bulk.write(root / "gradebook_LAB8_2022-11-02-10-00-00.zip")
    paths = SimpleNamespace(root=root, rubric=rubric, submissions=root / "submissions", results=root / "results")
    assert cli_main(["import-bb", str(zip_path), "--submissions", str(paths.submissions), "--rubric", str(rubric)]) == 0
    run = run_batch(paths, workers=2)
    return SimpleNamespace(paths=paths, run=run)


@pytest.fixture
def graded_copy(graded_class, tmp_path) -> SimpleNamespace:
    """A private copy of the graded class that a test may change."""
    root = tmp_path / "class"
    shutil.copytree(graded_class.paths.root, root)
    return SimpleNamespace(
        root=root, rubric=root / "rubric.yaml", submissions=root / "submissions", results=root / "results"
    )


def test_grade_all_writes_one_result_per_student_and_a_broken_one_is_an_error_result(graded_class):
    paths, report = graded_class.paths, graded_class.run.report
    assert report.sandbox_runs == 3 and report.workers == 2 and not report.crashed
    assert sorted(p.name for p in paths.results.glob("*.json")) == ["alice.json", "bob.json", "carol.json"]
    assert result_of(paths, "alice").status == "graded" and result_of(paths, "bob").status == "graded"
    carol = result_of(paths, "carol")
    assert carol.status == "error" and carol.error_kind == "syntax"
    assert "3 student(s): 3 to grade in the fake sandbox" in graded_class.run.output


@pytest.mark.integration
def test_a_class_graded_in_the_local_sandbox_runs_each_model_and_a_broken_one_is_an_error_result(tmp_path, tiny_split):
    require_tool(
        bwrap_available(), "grading in the local sandbox needs bubblewrap (TA grading refuses a plain process)"
    )
    write_npz(tiny_split, tmp_path / "split.npz")
    paths = SimpleNamespace(rubric=write_class_rubric(tmp_path, tiny_split), submissions=tmp_path / "submissions",
                            results=tmp_path / "results")  # fmt: skip
    make_submission(paths.submissions, "alice")
    make_submission(paths.submissions, "carol", TINY_MODEL + "\ndef broken(:\n    pass\n")
    run = run_batch(paths, workers=2, sandbox="local")
    assert run.report.sandbox_runs == 2 and not run.report.crashed
    assert "2 student(s): 2 to grade in the local sandbox" in run.output
    alice, carol = result_of(paths, "alice"), result_of(paths, "carol")
    assert alice.status == "graded" and alice.run.backend == "local" and alice.run.parameter_count > 0
    assert carol.status == "error" and carol.error_kind == "syntax" and "SyntaxError" in carol.error


def test_late_penalty_comes_from_the_blackboard_submission_time(graded_class):
    alice, bob = result_of(graded_class.paths, "alice"), result_of(graded_class.paths, "bob")
    assert alice.late.days_late == 0 and alice.final_points == alice.points
    assert bob.late.days_late == 1 and bob.late.penalty_fraction == pytest.approx(0.1)
    assert bob.late.submitted_at == "2022-11-02T09:59:00-06:00"
    assert bob.final_points.total == pytest.approx(round(bob.points.total * 0.9, 4))
    machine = bob.items[0].points
    assert bob.points.exercise1 == machine, "the machine's figures stay as they were"


def test_second_run_skips_every_unchanged_student(graded_copy):
    before = snapshot(graded_copy.results)
    run = run_batch(graded_copy)
    assert run.report.sandbox_runs == 0 and run.report.written == []
    assert run.report.planned["keep"] == 3
    assert snapshot(graded_copy.results) == before


def test_more_workers_in_the_rubric_regrade_nothing(graded_copy):
    edit_rubric(graded_copy.rubric, lambda data: data["sandbox"].update(workers=4))
    assert run_batch(graded_copy).report.written == []


def test_changed_exercise1_anchors_rescore_from_the_stored_accuracy_without_the_sandbox(graded_copy):
    before = result_of(graded_copy, "alice")
    anchors = [{"accuracy": 0.0, "points": 0}, {"accuracy": 0.2, "points": 100}]
    edit_rubric(graded_copy.rubric, lambda data: data["exercise1"].update(anchors=anchors))
    run = run_batch(graded_copy)
    assert run.report.sandbox_runs == 0 and run.report.planned["rescore"] == 3
    after = result_of(graded_copy, "alice")
    expected = exercise1_points(before.accuracy, load_rubric(graded_copy.rubric).exercise1).points
    assert after.points.exercise1 == expected != before.points.exercise1
    assert after.accuracy == before.accuracy and after.timings == before.timings
    assert run_batch(graded_copy).report.written == [], "the rescored results now match the rubric"


def test_changed_exercise2_section_regrades_the_answers_without_the_sandbox(graded_copy):
    exercise2 = Exercise2Rubric.default().model_dump(mode="json")
    exercise2["scoring"]["points_step"] = 0.5
    edit_rubric(graded_copy.rubric, lambda data: data.update(exercise2=exercise2))
    run = run_batch(graded_copy)
    assert run.report.sandbox_runs == 0 and run.report.planned["rescore"] == 3
    current = load_rubric(graded_copy.rubric).section_hashes()
    alice = result_of(graded_copy, "alice")
    assert alice.inputs.rubric_sections == current and [item.item for item in alice.items] == ["exercise1", "exercise2"]


def test_changed_late_policy_only_moves_the_final_points(graded_copy):
    edit_rubric(graded_copy.rubric, lambda data: data["late"].update(penalty_per_day=0.5))
    alice_before = result_of(graded_copy, "alice")
    run = run_batch(graded_copy)
    assert run.report.sandbox_runs == 0 and run.report.planned["keep"] == 3
    bob, alice = result_of(graded_copy, "bob"), result_of(graded_copy, "alice")
    assert bob.final_points.total == pytest.approx(round(bob.points.total * 0.5, 4))
    assert alice.final_points == alice_before.final_points and alice.timings == alice_before.timings


def test_changed_submission_file_regrades_only_that_student(graded_copy):
    before = snapshot(graded_copy.results)
    torch.save(tiny_model(7).state_dict(), graded_copy.submissions / "alice" / "weights.pth")
    run = run_batch(graded_copy)
    assert run.report.sandbox_runs == 1 and run.report.written == ["alice"]
    after = snapshot(graded_copy.results)
    assert after["bob.json"] == before["bob.json"] and after["carol.json"] == before["carol.json"]
    assert after["alice.json"] != before["alice.json"]


def test_overrides_apply_on_top_of_the_machine_points(graded_copy):
    overrides = {
        "bob": {"items": {"total": 90}, "reason": "regraded by hand", "decided_by": "TA Kim"},
        "alice": {"items": {"exercise2": 3}, "reason": "answer 3 accepted", "decided_by": "Dr Lee"},
    }
    (graded_copy.root / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    machine = {student: result_of(graded_copy, student).points for student in ("alice", "bob")}
    run = run_batch(graded_copy)
    assert run.report.sandbox_runs == 0 and sorted(run.report.written) == ["alice", "bob"]
    bob, alice = result_of(graded_copy, "bob"), result_of(graded_copy, "alice")
    assert bob.final_points.total == 90 and bob.points == machine["bob"]
    assert bob.overrides[0].decided_by == "TA Kim" and bob.overrides[0].item == "total"
    assert alice.final_points.exercise2 == 3
    assert alice.final_points.total == pytest.approx(machine["alice"].total + 3 - machine["alice"].exercise2)


def test_an_override_for_an_unknown_student_or_item_is_an_error(graded_copy, capsys):
    overrides = {"zed": {"items": {"total": 50}, "reason": "r", "decided_by": "TA"},
                 "alice": {"items": {"exercise9": 1}, "reason": "r", "decided_by": "TA"}}  # fmt: skip
    (graded_copy.root / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    before = snapshot(graded_copy.results)
    paths = ["--rubric", graded_copy.rubric, "--submissions", graded_copy.submissions, "--results", graded_copy.results]
    assert cli_main(["grade", "--all", *map(str, paths)]) == 2
    message = capsys.readouterr().err.replace("\n", " ")
    assert "zed: unknown student" in message and "alice.items.exercise9: unknown item" in message
    assert snapshot(graded_copy.results) == before


def test_export_after_grade_all_parses_back_with_non_submitters(graded_copy, capsys):
    roster = graded_copy.root / "roster.txt"
    roster.write_text("alice\nbob\ncarol\ndan\n")
    out = graded_copy.root / "exports"
    args = ["--rubric", str(graded_copy.rubric), "--results", str(graded_copy.results), "--out", str(out)]
    args += ["--submissions", str(graded_copy.submissions), "--roster", str(roster)]
    assert cli_main(["export", "--format", "bb", *args]) == 0
    assert cli_main(["export", "--format", "full", *args]) == 0
    printed = capsys.readouterr().out.split()
    bb, full = out / "lab-8_blackboard.csv", out / "lab-8_full.csv"
    assert str(bb) in printed and str(full) in printed
    rows = list(csv.reader(bb.read_text(encoding="utf-8").splitlines()))
    assert rows[0] == ["Username", "Lab 8 [Total Pts: 104 Score] |123456"]
    grades = dict(rows[1:])
    bob = result_of(graded_copy, "bob")
    assert float(grades["bob"]) == pytest.approx(bob.final_points.total, abs=0.005)
    assert grades["dan"] == "0" and grades["carol"] == "0"
    full_rows = {row["student"]: row for row in csv.DictReader(io.StringIO(full.read_text(encoding="utf-8-sig")))}
    assert full_rows["bob"]["days_late"] == "1" and full_rows["dan"]["status"] == "missing"


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_interrupted_grade_all_loses_no_finished_result_and_resumes(tmp_path, tiny_split, stop):
    require_tool(
        bwrap_available(), "grading in the local sandbox needs bubblewrap (TA grading refuses a plain process)"
    )
    write_npz(tiny_split, tmp_path / "split.npz")
    paths = SimpleNamespace(rubric=write_rubric(tmp_path / "rubric.yaml", tmp_path / "split.npz", tiny_split),
                            submissions=tmp_path / "submissions", results=tmp_path / "results")  # fmt: skip
    for seed, student in enumerate(("ann", "ben")):
        make_submission(paths.submissions, student, seed=seed)
    command = [sys.executable, "-m", "grader", "grade", "--all", "--workers", "1", "--rubric", str(paths.rubric)]
    command += ["--submissions", str(paths.submissions), "--results", str(paths.results)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while not list(paths.results.glob("*.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(stop)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == (130 if stop == signal.SIGINT else -signal.SIGKILL), output
    if stop == signal.SIGINT:
        assert "interrupted: finished results are saved" in output

    finished = snapshot(paths.results)
    assert len(finished) == 1, "stopped after the first result and before the second"
    assert all(load_result(paths.results / name) is not None for name in finished), "no half-written result"
    assert all(json.loads(data) for data in finished.values())
    rerun = run_batch(paths, sandbox="local")
    assert rerun.report.sandbox_runs == 2 - len(finished)
    after = snapshot(paths.results)
    assert sorted(after) == ["ann.json", "ben.json"]
    assert all(after[name] == data for name, data in finished.items()), "finished results were not redone"


def stored_result(folder: Path, current: CurrentInputs, **inputs) -> Result:
    hashes = {
        "submission": {"model.py": "m", "weights.pth": "w", "manifest.json": "x"},
        "split": current.split,
        "rubric": current.rubric,
        "rubric_sections": dict(current.rubric_sections),
        "grader_version": current.grader_version,
    }
    hashes.update(inputs)
    return Result(student=folder.name, status="graded", accuracy=0.5, inputs=InputHashes(**hashes))


@pytest.mark.parametrize(
    ("change", "action", "rescore"),
    [
        ({}, "keep", ()),
        ({"grader_version": "0.0.1"}, "grade", ()),
        ({"split": "other"}, "grade", ()),
        ({"submission": {"model.py": "changed", "weights.pth": "w", "manifest.json": "x"}}, "grade", ()),
        ({"submission": {"model.py": "m", "weights.pth": "w", "manifest.json": "new"}}, "keep", ()),
        ({"sections": {"sandbox": "old"}}, "grade", ()),
        ({"sections": {"exercise1": "old"}}, "rescore", ("exercise1",)),
        ({"sections": {"exercise1": "old", "exercise2": "old"}}, "rescore", ("exercise1", "exercise2")),
        ({"sections": {"late": "old", "export": "old"}}, "keep", ()),
    ],
)
def test_plan_runs_the_sandbox_only_for_what_can_change_predictions(tmp_path, monkeypatch, change, action, rescore):
    import grader.batch.plan as plan_module

    monkeypatch.setattr(plan_module, "submission_hashes", lambda folder: {"model.py": "m", "weights.pth": "w"})
    sections = {"split": "s", "sandbox": "b", "exercise1": "e1", "exercise2": "e2", "late": "l", "export": "x"}
    current = CurrentInputs(split="split", rubric="r", rubric_sections=sections, grader_version="1.0")
    change = dict(change)
    stored_sections = {**sections, **change.pop("sections", {})}
    stored = stored_result(tmp_path / "alice", current, rubric_sections=stored_sections, **change)
    plan = plan_student(tmp_path / "alice", stored, current)
    assert (plan.action, plan.rescore) == (action, rescore), plan.reasons
    assert plan_student(tmp_path / "alice", stored, current, force=True).action == "grade"
    assert plan_student(tmp_path / "alice", None, current).action == "grade"


def test_workers_come_from_the_cli_then_the_rubric_then_the_gpus_then_the_cpus(rubric_file, monkeypatch):
    rubric = load_rubric(rubric_file)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert choose_workers(3, rubric) == 3
    assert choose_workers(None, rubric) == 4, "the tiny rubric runs on the CPU: one worker per two cores"
    rubric.sandbox.device = "auto"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert choose_workers(None, rubric) == 2
    rubric.sandbox.workers = 6
    assert choose_workers(None, rubric) == 6


def test_parallel_workers_each_lease_a_gpu_of_their_own(monkeypatch):
    import threading

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert visible_gpus() == ["2", "5"]
    pool, held, both_in = GpuPool(visible_gpus()), [], threading.Barrier(2)

    def work():
        with pool.lease() as gpu:
            held.append(gpu)
            both_in.wait(timeout=10)  # both leases are held at once

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(held) == ["2", "5"]
    with GpuPool([]).lease() as gpu:
        assert gpu is None


def test_a_leased_gpu_is_the_only_one_the_local_sandbox_sees():
    from grader.sandbox.local import LocalBackend

    backend = LocalBackend(force_plain_process=True)
    assert backend._environment(Path("/tmp"), use_gpu=True, gpu="5")["CUDA_VISIBLE_DEVICES"] == "5"
    assert backend._environment(Path("/tmp"), use_gpu=False, gpu="5")["CUDA_VISIBLE_DEVICES"] == ""


def test_summary_groups_errors_by_cause_and_describes_the_distributions():
    inputs = InputHashes(grader_version="1")

    def result(student, status="graded", accuracy=None, total=0.0, kind=None):
        points = Points(total=total)
        return Result(student=student, status=status, accuracy=accuracy, points=points, final_points=points,
                      error_kind=kind, error=f"{kind} trouble" if kind else None, inputs=inputs)  # fmt: skip

    results = [
        result("a", accuracy=0.5, total=50),
        result("b", accuracy=0.7, total=70),
        result("c", "error", kind="timeout"),
        result("d", "error", kind="syntax"),
        result("e", "error", kind="timeout"),
    ]
    summary = summarise(results)
    assert (summary.graded, summary.failed) == (2, 3)
    assert summary.accuracy["mean"] == pytest.approx(0.6) and summary.points["max"] == 70
    assert list(summary.errors) == ["timeout", "syntax"]
    assert [student for student, _ in summary.errors["timeout"]] == ["c", "e"]
    console = Console(file=io.StringIO(), width=200)
    render_summary(summary, console)
    assert "2 graded" in console.file.getvalue() and "timeout" in console.file.getvalue()


def test_summary_lists_students_whose_answers_are_near_duplicates(tmp_path):
    from grader.answers import Exercise2Rubric, grade_answers

    shared = (
        "1. Yes, an autoencoder learns a compressed code without labels by reconstructing its input.\n"
        "2. They learn features from raw data and do well with large labelled datasets and GPUs.\n"
        "3. They need lots of data and compute, overfit small datasets and are hard to interpret.\n"
        "4. They approximate any nonlinear function, so the architecture can fit the data we know.\n"
    )
    own = "1. No idea.\n2. Fast.\n3. Slow.\n4. Because.\n"
    rubric, results = Exercise2Rubric.default(), []
    for student, text in (("ann", shared), ("ben", shared), ("cat", own)):
        path = tmp_path / f"{student}.md"
        path.write_text(text)
        graded = grade_answers(path, rubric, method="tfidf")
        results.append(
            Result(
                student=student,
                status="graded",
                answers=graded.model_dump(mode="json"),
                inputs=InputHashes(grader_version="1"),
            )  # fmt: skip
        )
    pairs = summarise(results).duplicates
    assert {(pair.student_a, pair.student_b) for pair in pairs} == {("ann", "ben")}
    assert sorted(pair.question for pair in pairs) == [1, 2, 3, 4]
    assert all(pair.similarity > 0.9 for pair in pairs)


def test_summary_lists_each_group_of_near_duplicates_once_with_every_name_in_full():
    from grader.answers import DuplicatePair

    long_names = [f"student-with-a-very-long-username-number-{index}-of-the-class-list" for index in range(3)]
    pairs = [DuplicatePair(question=question, student_a=a, student_b=b, similarity=0.95)
             for question in (1, 2, 3, 4, 5) for a, b in ((long_names[0], long_names[1]),
                                                          (long_names[1], long_names[2]))]  # fmt: skip
    pairs += [DuplicatePair(question=1, student_a="ann", student_b="ben", similarity=0.91)]
    console = Console(file=io.StringIO(), width=80)
    render_summary(ClassSummary(graded=5, duplicates=pairs), console)
    lines = console.file.getvalue().splitlines()
    group = [line for line in lines if long_names[0] in line]
    assert len(group) == 1 and all(name in group[0] for name in long_names)  # one line, no name cut
    assert "Q1, Q2, Q3, Q4, Q5; 10 pair(s)" in group[0]
    assert sum("ann, ben" in line for line in lines) == 1


def test_summary_counts_overrides_and_late_students_and_shows_points_with_two_decimals():
    inputs = InputHashes(grader_version="1")
    results = [
        Result(student="ivan", status="graded", points=Points(total=70.672), final_points=Points(total=2.5),
               overrides=[OverrideRecord(item="total", points=2.5, reason="copied", decided_by="TA Kim")],
               inputs=inputs),
        Result(student="judy", status="graded", points=Points(total=80), final_points=Points(total=72),
               late=LateInfo(days_late=1, penalty_fraction=0.1, reason="1 day late"),
               notes=["set aside 1 attempt(s) after the deadline"], inputs=inputs),
        Result(student="grace", status="graded", points=Points(total=70.672), final_points=Points(total=70.672),
               notes=["no answers file in the graded attempt: the text typed into its Submission Field is used (x)"],
               inputs=inputs),
    ]  # fmt: skip
    console = Console(file=io.StringIO(), width=200)
    render_summary(summarise(results), console)
    text = console.file.getvalue()
    assert "1 student(s) override(s) in overrides.yaml: ivan" in text
    assert "1 student(s) late (penalty applied): judy" in text
    assert "1 student(s) with attempts after the deadline set aside: judy" in text
    assert "text field: grace" in text
    assert "70.67" in text and "70.672" not in text


def hostile_result(student: str, **fields) -> Result:
    return Result(student=student, inputs=InputHashes(grader_version="1"), **fields)


def test_live_display_prints_student_names_errors_and_crashes_literally():
    console = terminal()
    display = BatchDisplay(console, total=4, workers=2)
    for student in ("a" + HOSTILE, "b" + HOSTILE, "c" + HOSTILE, "d" + HOSTILE):
        display.started(student)
    graded = hostile_result("a" + HOSTILE, status="graded", accuracy=0.5, final_points=Points(total=50))
    display.finished("a" + HOSTILE, graded)
    display.finished("b" + HOSTILE, hostile_result("b" + HOSTILE, status="error", error_kind="x", error=HOSTILE))
    display.finished("c" + HOSTILE, None, crash=HOSTILE)
    display._running["d" + HOSTILE] -= 3600  # has run an hour: overdue, so the ETA names it
    console.print(display)
    output = console.file.getvalue()
    assert_printed_literally(output)
    assert output.count("[link=http://evil]click[/link]") == 7  # four names, one error, one crash, the ETA's name


def test_class_summary_prints_names_errors_and_file_names_from_the_results_literally(tmp_path):
    from grader.answers import Exercise2Rubric, grade_answers

    results = tmp_path / "results"
    results.mkdir()
    answers = tmp_path / "answers.md"
    answers.write_text(
        "1. Yes, an autoencoder learns a compressed code without labels by reconstructing its input.\n"
        "2. They learn features from raw data and do well with large labelled datasets and GPUs.\n"
    )
    graded = grade_answers(answers, Exercise2Rubric.default(), method="tfidf").model_dump(mode="json")
    stored = [
        hostile_result("a" + HOSTILE, status="graded", accuracy=0.5, answers=graded),
        hostile_result("b" + HOSTILE, status="graded", accuracy=0.6, answers=graded),
        hostile_result("c" + HOSTILE, status="error", error_kind=HOSTILE, error=HOSTILE),
    ]
    for number, result in enumerate(stored):
        (results / f"{number}.json").write_text(result.model_dump_json())
    (results / "\x1b[31mEVIL [red]x.json").write_text("not a result")
    console = terminal()
    assert summary_main(results=results, console=console) == 0
    output = console.file.getvalue()
    assert_printed_literally(output)
    assert "Near-duplicate answers" in output and "[red]x.json" in output


def test_eta_comes_from_the_typical_student_time_and_the_free_workers():
    eta = estimate_eta(queued=10, running={"a": 1.0, "b": 3.0}, finished=[4.0, 4.0, 5.0], workers=2, limit_seconds=600)
    assert eta.seconds == pytest.approx((10 * 4.0 + 3.0 + 1.0) / 2)
    assert eta.waiting_on is None and eta.text() == "ETA 22 s"
    assert estimate_eta(queued=0, running={}, finished=[4.0], workers=2, limit_seconds=600).seconds == 0
    assert estimate_eta(queued=5, running={"a": 2.0}, finished=[], workers=2, limit_seconds=600).text() == (
        "ETA unknown (no student finished yet)"
    )


def test_eta_never_promises_less_than_a_stuck_student_may_still_take():
    # Typical 4 s; carol has slept for 10 minutes of a 15-minute limit: the class is not done in 17 s.
    eta = estimate_eta(
        queued=6, running={"carol": 600.0, "dan": 1.0}, finished=[4.0, 4.1, 3.9], workers=2, limit_seconds=900
    )
    assert eta.seconds == pytest.approx(300.0)
    assert eta.waiting_on == "carol"
    assert eta.text() == "ETA up to 5 min 00 s: carol has run 10 min 00 s (typical 4 s, limit 15 min 00 s)"
    # The overdue student holds one worker: the queue drains through the other one alone.
    busy = estimate_eta(queued=100, running={"carol": 600.0, "dan": 1.0}, finished=[4.0], workers=2, limit_seconds=900)
    assert busy.seconds == pytest.approx(100 * 4.0 + 3.0)
    # Just past the typical time is not yet overdue.
    assert estimate_eta(queued=0, running={"dan": 9.0}, finished=[4.0], workers=1, limit_seconds=900).waiting_on is None


def test_grade_all_piped_prints_one_plain_line_per_finished_student(graded_class, tmp_path, monkeypatch, capsys):
    root = tmp_path / "class"
    shutil.copytree(graded_class.paths.root, root)
    shutil.rmtree(root / "results")
    fake = class_sandbox()
    monkeypatch.setattr("grader.pipeline.session.get_backend", lambda name, image=None, warm=False: fake)
    argv = ["grade", "--all", "--rubric", str(root / "rubric.yaml"), "--submissions", str(root / "submissions")]
    code = cli_main([*argv, "--results", str(root / "results"), "--workers", "1"])
    output = capsys.readouterr().out
    assert code == 0
    lines = [text for text in output.splitlines() if text.startswith("[")]
    assert len(lines) == 3, output
    assert [text.split(" ")[:3] for text in lines] == [
        ["[1/3]", "alice", "graded"],
        ["[2/3]", "bob", "graded"],
        ["[3/3]", "carol", "error:"],
    ]
    alice = result_of(SimpleNamespace(results=root / "results"), "alice")
    assert lines[0].startswith(f"[1/3] alice graded {alice.final_points.total:.2f} points (")
    assert lines[2].startswith("[3/3] carol error: syntax (")
    assert "; ETA " in lines[0] and "unknown" not in lines[0]  # alice's time is the typical one from here on
    assert lines[-1].endswith("; ETA 0 s")
    assert "\r" not in output and "\x1b" not in output  # no live redraw, no cursor movement
    last = output.strip().splitlines()[-1]  # the run ends as `grader summary` does: what waits for a TA
    assert "still wait for a TA's decision" in last and "carol" in last, output
