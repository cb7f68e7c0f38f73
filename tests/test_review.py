"""`grader review`: the decisions store, how decisions reach results, pages, the summary and the exports, the queue
and its groups, and the web app's access rules (token, form value, host), over a real HTTP server.

A small class is graded once per module through the fake sandbox, with real answers files; each test works on its
own copy of the graded folder. The browser tests are in test_review_browser.py.
"""

from __future__ import annotations

import csv
import html
import http.client
import http.cookiejar
import io
import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers import FakeBackend, FakeFailure, fake_submission, logits_with_accuracy, write_npz, write_rubric
from rich.console import Console

from grader.answers.rubric import DEFAULT_RUBRIC_FILE
from grader.answers.similarity import METHOD_ENV
from grader.batch.export import export_results
from grader.batch.run import BatchOptions, grade_all
from grader.batch.summary import main as summary_main
from grader.cli import main as cli_main
from grader.integrity.copies import CopyPair, CopyReport, read_copy_report, write_copy_report
from grader.report.html.build import build_reports
from grader.report.html.class_page import review_reasons
from grader.results.store import load_result, load_results, result_path, save_result
from grader.review.counts import review_counts
from grader.review.groups import average_linkage, group_answers
from grader.review.queue import build_queue
from grader.review.server import ReviewServer
from grader.review.session import DecisionRefused, ReviewSession, group_key
from grader.review.store import Decision, DecisionStore, Rescore, ReviewStoreError, store_path
from grader.review.subjects import answers_of, text_hash
from grader.review.views import case_view, queue_view

GOOD = (
    "1. Yes: an autoencoder learns a compressed code of its input without labels, and its codes can be clustered.\n"
    "2. They learn features from raw pixels, given large labelled datasets and GPUs.\n"
    "3. They need much data and compute, overfit small sets and are hard to interpret.\n"
    "4. They approximate nonlinear functions that fit the data well.\n"
)
SHARED = (
    "1. No, neural networks always need labels to learn anything.\n"
    "2. Because computers are faster now.\n"
    "3. They are slow.\n"
    "4. Nonlinear activations.\n"
)
# dan wrote bob's and cat's answers with other capitals and stops: the same words, another hash.
NEARLY_SHARED = SHARED.replace("No, neural", "no neural").replace("anything.", "anything!")
PAYLOAD = '</textarea></script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">\u202eevil'
HOSTILE = "<i onmouseover=alert(1)>mallory"  # a folder name: anything but a slash
# eve's second answer is right in plain words that share few of the rubric's: the checker gives half, likely off
# (p_off), so the grader flags it for a TA.
PLAIN_WORDS = GOOD.replace(
    "2. They learn features from raw pixels, given large labelled datasets and GPUs.\n",
    "2. They shine when there is a huge pile of examples to learn from and the inputs are things like photos, sound "
    "recordings or written language. They work out by themselves which patterns in the raw input matter, so people "
    "do not have to hand-craft them, and they capture very tangled relationships between input and output.\n",
)
EXPORT = {"column_name": "Lab 8", "column_id": "123456", "points_possible": 104, "feedback": True}


@pytest.fixture(scope="module")
def graded_once(tmp_path_factory, tiny_split):
    """alice answers well, eve too (one answer in plain words) but her model.py is broken; bob and cat wrote the
    same weak answers, dan nearly so; a student named like markup wrote markup."""
    root = tmp_path_factory.mktemp("review-class")
    write_npz(tiny_split, root / "split.npz")
    write_rubric(root / "rubric.yaml", Path("split.npz"), tiny_split, export=EXPORT)
    submissions = root / "submissions"
    for name, answers in (("alice", GOOD), ("bob", SHARED), ("cat", SHARED), ("dan", NEARLY_SHARED),
                          ("eve", PLAIN_WORDS), (HOSTILE, f"1. {PAYLOAD}\n2. {PAYLOAD}\n")):  # fmt: skip
        fake_submission(submissions, name, answers=answers)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(METHOD_ENV, "tfidf")
        grade(root, tiny_split.labels)
    return root


def grade(root: Path, labels, *, backend: FakeBackend | None = None) -> None:
    backend = backend or FakeBackend({
        "alice": logits_with_accuracy(labels, 0.8), "bob": logits_with_accuracy(labels, 0.5),
        "cat": logits_with_accuracy(labels, 0.5), "dan": logits_with_accuracy(labels, 0.4),
        "eve": FakeFailure("syntax", "model.py line 3: SyntaxError"), HOSTILE: logits_with_accuracy(labels, 0.2),
    })  # fmt: skip
    options = BatchOptions(rubric=root / "rubric.yaml", submissions=root / "submissions", results=root / "results",
                           sandbox=backend, workers=1)  # fmt: skip
    report = grade_all(options, Console(file=io.StringIO()))
    assert not report.crashed, report


@pytest.fixture
def klass(graded_once, tmp_path, monkeypatch, tiny_split):
    root = tmp_path / "class"
    shutil.copytree(graded_once, root)
    monkeypatch.setenv(METHOD_ENV, "tfidf")
    return SimpleNamespace(root=root, rubric=root / "rubric.yaml", results=root / "results",
                           submissions=root / "submissions", labels=tiny_split.labels)  # fmt: skip


def session_of(klass) -> ReviewSession:
    return ReviewSession(results=klass.results, rubric=klass.rubric, submissions=klass.submissions)


def answer(klass, student: str, question: int):
    stored = load_result(result_path(klass.results, student))
    return next(found for found in answers_of(stored) if found.question == question)


def decide(session: ReviewSession, student: str, question: int, points: str, *, scope="answer", comment="", who="Kim"):
    found = session.find_answer(question, student)
    assert found is not None
    index, current = found
    group, subgroup = session.group_of(question, index)
    members = group.members if scope == "group" else subgroup
    names = [session.answers_of_question(question)[position].student for position in members]
    standing = session.queue.standing.get((student, f"q{question}"))
    return session.decide_answer(
        question=question, student=student, scope=scope, points=points, comment=comment, decided_by=who,
        seen_sha256=current.text_sha256, expected=standing.id if standing else None, seen_group=group_key(names),
    )  # fmt: skip


def export_rows(klass, tmp_path: Path, format_name: str = "bb") -> dict[str, dict[str, str]]:
    out = tmp_path / f"exports-{format_name}"
    [path] = export_results(format_name=format_name, rubric=klass.rubric, results=klass.results,
                            submissions=klass.submissions, out=out, console=Console(file=io.StringIO()))  # fmt: skip
    with open(path, encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.DictReader(stream))
    key = "Username" if format_name == "bb" else "student"
    return {row[key]: row for row in rows}


def feedback(row: dict[str, str]) -> str:
    """The feedback cell as the student reads it (Blackboard's is HTML)."""
    return html.unescape(row["Feedback to Learner"]).replace("<br>", "\n")


def grade_column(row: dict[str, str]) -> str:
    return next(value for name, value in row.items() if name.startswith("Lab 8"))


# --- the store -------------------------------------------------------------------------------------------------

WRITER = """
import sys, time
from pathlib import Path
from grader.review.store import Decision, DecisionStore
store, who, go = DecisionStore(Path(sys.argv[1])), sys.argv[2], Path(sys.argv[3])
while not go.exists():
    time.sleep(0.001)
for n in range(40):
    store.record([Decision(student=f"{who}-{n}", subject="q1", text_sha256="a" * 64, item="exercise2", points=1,
                           decided_by=who)])
    store.record([Decision(student="shared", subject="q2", text_sha256="b" * 64, item="exercise2", points=n / 40,
                           decided_by=who)])
"""


def test_two_processes_writing_decisions_at_once_lose_none(tmp_path):
    path, go = tmp_path / "results" / "review.sqlite", tmp_path / "go"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), who, str(go)], stderr=subprocess.PIPE)
               for who in ("kim", "lee")]  # fmt: skip
    go.touch()
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read().decode()
    store = DecisionStore(path)
    active = {decision.student for decision in store.active()}
    assert active == {f"{who}-{n}" for who in ("kim", "lee") for n in range(40)} | {"shared"}
    history = store.history("shared", "q2")
    assert len(history) == 80 and {row.decided_by for row in history} == {"kim", "lee"}
    assert [row.supersedes for row in history[1:]] == [row.id for row in history[:-1]]  # each replaced the last
    assert store.for_student("shared") == [history[-1]]


def test_a_decision_made_meanwhile_on_the_same_answer_is_a_conflict_never_an_overwrite(tmp_path):
    store = DecisionStore(tmp_path / "review.sqlite")
    seen = Decision(student="bob", subject="q1", text_sha256="a" * 64, item="exercise2", points=1, decided_by="Kim")
    first = store.record([seen], expected={seen.key: None}).recorded[0]
    late = seen.model_copy(update={"points": 0.0, "decided_by": "Lee"})
    outcome = store.record([late], expected={late.key: None})  # Lee's page was drawn before Kim decided
    assert outcome.recorded == [] and outcome.conflicts[0].current == first
    assert store.for_student("bob") == [first]
    assert store.record([late], expected={late.key: first.id}).recorded[0].points == 0.0


def test_a_file_that_is_no_review_store_is_a_clear_error_naming_it(tmp_path):
    path = tmp_path / "review.sqlite"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(ReviewStoreError, match="review.sqlite"):
        DecisionStore(path).active()


def test_reading_decisions_where_none_were_made_creates_no_file(tmp_path):
    store = DecisionStore(tmp_path / "review.sqlite")
    assert store.active() == [] and store.for_student("bob") == [] and store.last_id() == 0
    assert not store.path.exists()


# --- decisions reach results, pages, summary and exports ---------------------------------------------------------


def test_a_decision_reaches_the_result_the_export_feedback_and_summary(klass, tmp_path, capsys):
    before = load_result(result_path(klass.results, "bob"))
    machine = answer(klass, "bob", 2).machine_points
    outcome = decide(session_of(klass), "bob", 2, "1", comment="Faster hardware is half of it; see lecture 2.")
    assert outcome.ok and outcome.students == ["bob"], outcome
    after = load_result(result_path(klass.results, "bob"))
    assert after.points == before.points  # the machine's figures stay
    shift = 1 - machine
    assert after.final_points.by_item["exercise2"] == pytest.approx(before.final_points.by_item["exercise2"] + shift)
    assert after.final_points.total == pytest.approx(before.final_points.total + shift)
    [record] = after.decisions
    assert (record.question, record.points, record.status, record.decided_by) == (2, 1.0, "applied", "Kim")

    row = export_rows(klass, tmp_path)["bob"]
    assert float(grade_column(row)) == pytest.approx(after.final_points.total, abs=0.01)
    assert "Question 2: 1 / 1 - graded by Kim\n    TA's comment: Faster hardware is half of it; see lecture 2." in (
        feedback(row)
    )

    assert summary_main(results=klass.results, submissions=klass.submissions) == 0
    assert "1 decided (1 answers, 0 errors or flags)" in capsys.readouterr().out


def test_a_decision_reaches_the_students_page_and_leaves_the_class_pages_review_list(klass, tmp_path):
    flagged = [(result.student, q["number"]) for result in load_results(klass.results)[0] if result.answers
               for q in result.answers["questions"] if q["needs_review"]]  # fmt: skip
    assert flagged, "the class needs an answer the grader flagged"
    student, question = flagged[0]
    assert f"Q{question}" in " ".join(review_reasons(load_result(result_path(klass.results, student))))
    decide(session_of(klass), student, question, "0.5", comment="Half of the idea is there.")
    build_reports(results=klass.results, rubric=klass.rubric, output=tmp_path / "report", exports=None)
    page = (tmp_path / "report" / "students" / f"{student}.html").read_text(encoding="utf-8")
    assert "TA's comment: Half of the idea is there." in page and "Graded by Kim" in page
    assert f"Q{question}" not in " ".join(review_reasons(load_result(result_path(klass.results, student))))


def test_the_queue_page_counts_what_needs_review_as_the_summary_and_export_do(klass):
    session = session_of(klass)
    expected = review_counts(load_results(klass.results)[0], read_copy_report(klass.results)).waiting
    assert expected >= 1 and queue_view(session).needs_review == expected
    assert queue_view(session).waiting > expected  # the queue also holds every undecided answer
    error = session.find_case("eve", "error")
    outcome = session.decide_case(student="eve", subject="error", points="40", comment="", decided_by="Kim",
                                  seen_sha256=error.text_sha256, expected=None)  # fmt: skip
    assert outcome.ok and queue_view(session).needs_review == expected - 1


def test_decisions_survive_a_regrade_and_apply_without_running_a_model(klass):
    session = session_of(klass)
    decide(session, "bob", 1, "0.75", comment="Partly right.")
    decide(session, "cat", 3, "1")
    nothing_runs = FakeBackend({name: FakeFailure("crash", "a model ran") for name in ("bob", "cat", "alice")})
    grade(klass.root, klass.labels, backend=nothing_runs)  # unchanged files: nothing is graded again
    assert nothing_runs.jobs == []
    bob, cat = (load_result(result_path(klass.results, name)) for name in ("bob", "cat"))
    assert [(d.question, d.points, d.status) for d in bob.decisions] == [(1, 0.75, "applied"), (3, 1.0, "rescored")]
    assert [(d.question, d.points, d.status) for d in cat.decisions] == [(3, 1.0, "applied"), (1, 0.75, "rescored")]

    grade(klass.root, klass.labels, backend=None)  # and after a forced full regrade of bob's class
    options = BatchOptions(rubric=klass.rubric, submissions=klass.submissions, results=klass.results,
                           sandbox=FakeBackend({"bob": logits_with_accuracy(klass.labels, 0.5)}), force=True,
                           workers=1)  # fmt: skip
    grade_all(options, Console(file=io.StringIO()))
    bob = load_result(result_path(klass.results, "bob"))
    assert [(d.question, d.points, d.status) for d in bob.decisions] == [(1, 0.75, "applied"), (3, 1.0, "rescored")]


def test_a_decision_moves_the_same_undecided_answer_in_results_and_export_until_a_ta_decides_it(klass, tmp_path):
    """bob and cat wrote the same answers: the TA's grade of cat's becomes bob's grade too (rescored, stored with
    the decisions, applied by grade and export without any model), and a TA's own decision on bob's then wins."""
    session = session_of(klass)
    machine = answer(klass, "bob", 3).machine_points
    assert machine != 1.0
    decide(session, "cat", 3, "1")
    [rescore] = DecisionStore.of_results(klass.results).rescores_for("bob")
    assert (rescore.subject, rescore.points, rescore.followed) == ("q3", 1.0, ["cat"])
    bob = load_result(result_path(klass.results, "bob"))
    assert [(d.question, d.status) for d in bob.decisions] == [(3, "rescored")]
    assert bob.final_points.by_item["exercise2"] == pytest.approx(bob.points.by_item["exercise2"] + 1.0 - machine)
    build_reports(results=klass.results, rubric=klass.rubric, output=tmp_path / "report", exports=None)
    page = (tmp_path / "report" / "students" / "bob.html").read_text(encoding="utf-8")
    assert "Regraded after a teaching assistant graded similar answers" in page
    row = export_rows(klass, tmp_path, "full")["bob"]
    assert float(row["final_exercise2"]) == pytest.approx(bob.final_points.by_item["exercise2"])
    words = feedback(export_rows(klass, tmp_path, "bb")["bob"])
    assert "Question 3: 1 / 1 - Regraded after a teaching assistant graded similar answers" in words

    decide(session, "bob", 3, "0.5")  # the TA's own decision on bob's answer wins over the rescore
    bob = load_result(result_path(klass.results, "bob"))
    assert [(d.question, d.points, d.status) for d in bob.decisions] == [(3, 0.5, "applied")]
    assert bob.final_points.by_item["exercise2"] == pytest.approx(bob.points.by_item["exercise2"] + 0.5 - machine)


def test_an_earlier_class_decisions_rescore_a_new_class_from_the_start(klass, tmp_path):
    """Last year's class (a copy, graded on the same rubric) had cat's weak answer to question 3 graded 0.75: this
    year's bob and cat, who wrote the same words, are rescored from it before any decision of this year."""
    earlier = tmp_path / "lab8-2025"
    shutil.copytree(klass.results, earlier)
    decide(session_of(SimpleNamespace(**{**vars(klass), "results": earlier})), "cat", 3, "0.75")
    session = ReviewSession(results=klass.results, rubric=klass.rubric, submissions=klass.submissions,
                            seed_from=[earlier])  # fmt: skip
    assert DecisionStore.of_results(klass.results).active() == []
    for student in ("bob", "cat"):
        made = session.queue.suggestions[(student, 3)]
        assert (made.points, made.followed) == (0.75, ["lab8-2025/cat"])
        assert "lab8-2025/cat" in made.reason
        assert [(d.question, d.points, d.status) for d in load_result(result_path(klass.results, student)).decisions
                if d.question == 3] == [(3, 0.75, "rescored")]  # fmt: skip
    assert not any(entry.student.startswith("lab8-2025/") for entry in session.queue.entries)


def test_rescores_are_replaced_whole_and_say_which_students_changed(tmp_path):
    store = DecisionStore(tmp_path / "review.sqlite")
    assert store.replace_rescores([]) == set() and not store.path.exists()  # nothing to keep: no file made
    digest = text_hash("an answer")
    first = Rescore(student="bob", subject="q1", text_sha256=digest, item="exercise2", points=0.5,
                    followed=["line\nbreak", "cat"])  # fmt: skip
    assert store.replace_rescores([first]) == {"bob"}
    assert store.rescores_for("bob") == [first] and store.rescores_for("cat") == []
    assert store.replace_rescores([first]) == set()  # the same again: nobody's result changes
    moved = first.model_copy(update={"student": "dan"})
    assert store.replace_rescores([moved]) == {"bob", "dan"} and store.rescores_for() == [moved]


def test_seeds_teach_only_the_questions_that_read_the_same_this_year(klass, tmp_path):
    """This year's question 3 is reworded: last year's decision on its answers is left out; question 1's still
    teaches. Answers graded before results kept the question's text are matched by number and points, and said so."""
    earlier = tmp_path / "lab8-2025"
    shutil.copytree(klass.results, earlier)
    last_year = session_of(SimpleNamespace(**{**vars(klass), "results": earlier}))
    for question, points in ((1, "0.25"), (3, "0.75")):
        decide(last_year, "cat", question, points)
    snippet = yaml.safe_load(DEFAULT_RUBRIC_FILE.read_text(encoding="utf-8"))
    snippet["exercise2"]["questions"][2]["prompt"] += " Give one example."
    reworded = klass.root / "rubric-2026.yaml"
    reworded.write_text(klass.rubric.read_text(encoding="utf-8") + yaml.safe_dump(snippet))
    session = ReviewSession(results=klass.results, rubric=reworded, submissions=klass.submissions,
                            seed_from=[earlier])  # fmt: skip
    assert [(seed.answer.question, seed.question_checked) for seed in session.seeds] == [(1, True)]
    assert session.queue.suggestions[("bob", 1)].followed == ["lab8-2025/cat"]
    assert session.queue.suggestions[("bob", 3)].followed == []

    for path in earlier.glob("*.json"):  # as an older grader stored them
        stored = json.loads(path.read_text(encoding="utf-8"))
        for question in (stored.get("answers") or {}).get("questions") or []:
            del question["prompt_sha256"]
        path.write_text(json.dumps(stored), encoding="utf-8")
    session = ReviewSession(results=klass.results, rubric=klass.rubric, submissions=klass.submissions,
                            seed_from=[earlier])  # fmt: skip
    assert sorted((seed.answer.question, seed.question_checked) for seed in session.seeds) == [(1, False), (3, False)]


def test_a_seed_folder_without_decisions_is_refused_by_name(klass, tmp_path):
    earlier = tmp_path / "lab8-2025"
    shutil.copytree(klass.results, earlier)
    store_path(earlier).unlink(missing_ok=True)
    with pytest.raises(ValueError, match="lab8-2025: no review.sqlite"):
        ReviewSession(results=klass.results, rubric=klass.rubric, submissions=klass.submissions, seed_from=[earlier])


def test_the_class_own_results_folder_is_refused_as_a_seed(klass):
    decide(session_of(klass), "cat", 3, "0.75")
    with pytest.raises(ValueError, match="the class's own results folder"):
        ReviewSession(results=klass.results, rubric=klass.rubric, submissions=klass.submissions,
                      seed_from=[klass.results / "."])  # fmt: skip


def test_a_changed_answer_reopens_its_decision_and_the_others_still_apply(klass):
    session = session_of(klass)
    decide(session, "bob", 1, "1")
    decide(session, "bob", 2, "1")
    answers = klass.submissions / "bob" / "answers.md"
    answers.write_text(SHARED.replace("Because computers are faster now.", "Big labelled data sets and GPUs."))
    grade(klass.root, klass.labels)
    bob = load_result(result_path(klass.results, "bob"))
    assert {d.question: d.status for d in bob.decisions} == {1: "applied", 2: "reopened"}
    q1 = next(q for q in bob.answers["questions"] if q["number"] == 1)
    expected = bob.points.by_item["exercise2"] + (1 - q1["points"])  # q2 is the machine's again
    assert bob.final_points.by_item["exercise2"] == pytest.approx(expected)

    session.refresh()
    entry = session.queue.entry("bob", "q2")
    assert entry is not None and entry.reopened and session.queue.entries[0].priority >= entry.priority
    assert session.queue.entry("bob", "q1") is None  # still decided


def test_overrides_yaml_wins_over_a_review_decision_on_the_same_item(klass, tmp_path):
    decide(session_of(klass), "bob", 2, "1")
    overrides = {"bob": {"items": {"exercise2": 3.5}, "reason": "oral exam", "decided_by": "Dr Lee"}}
    (klass.root / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    row = export_rows(klass, tmp_path, "full")["bob"]
    assert float(row["final_exercise2"]) == 3.5 and row["review"] == "q2=1.0 by Kim"
    bob = load_result(result_path(klass.results, "bob"))
    assert bob.final_points.by_item["exercise2"] == 3.5 and bob.decisions[0].status == "applied"


def test_an_error_and_an_integrity_flag_wait_first_and_are_decided_as_items(klass, tmp_path):
    alice = load_result(result_path(klass.results, "alice"))
    flag = {"code": "perturbation-collapse", "message": "accuracy fell from 80% to 12% on perturbed copies"}
    alice = alice.model_validate({**alice.model_dump(), "integrity": {"flags": [flag]}})
    save_result(alice, klass.results)
    session = session_of(klass)
    cases = len(session.queue.cases)
    assert all(entry.kind != "answer" for entry in session.queue.entries[:cases])  # then the answers
    first = {(entry.student, entry.subject) for entry in session.queue.entries[:cases]}
    assert {("eve", "error"), ("alice", "integrity:perturbation-collapse")} <= first

    error = session.find_case("eve", "error")
    assert ("the student's files", str(klass.submissions / "eve")) in case_view(session, error).evidence
    outcome = session.decide_case(student="eve", subject="error", points="40", comment="Fixed a typo by hand.",
                                  decided_by="Kim", seen_sha256=error.text_sha256, expected=None)  # fmt: skip
    assert outcome.ok, outcome
    flagged = session.find_case("alice", "integrity:perturbation-collapse")
    session.decide_case(student="alice", subject=flagged.subject, points="", comment="", decided_by="Kim",
                        seen_sha256=flagged.text_sha256, expected=None)  # fmt: skip
    assert session.queue.entry("eve", "error") is None and session.queue.entry("alice", flagged.subject) is None
    eve = load_result(result_path(klass.results, "eve"))
    assert eve.final_points.by_item["exercise1"] == 40.0
    words = feedback(export_rows(klass, tmp_path)["eve"])
    assert "Exercise 1 set to 40 by Kim after review" in words and "TA's comment: Fixed a typo by hand." in words
    assert load_result(result_path(klass.results, "alice")).final_points == alice.final_points  # the flag: no change


def test_points_out_of_range_and_unknown_answers_are_refused(klass):
    session = session_of(klass)
    with pytest.raises(DecisionRefused, match="between 0 and 1"):
        decide(session, "bob", 1, "1.5")
    with pytest.raises(DecisionRefused, match="a number"):
        decide(session, "bob", 1, "lots")
    with pytest.raises(DecisionRefused, match="no answer"):
        session.decide_answer(question=1, student="nobody", scope="answer", points="1", comment="", decided_by="Kim",
                              seen_sha256="a" * 64, expected=None)  # fmt: skip
    assert not store_path(klass.results).exists() or DecisionStore.of_results(klass.results).active() == []


# --- copied models (results/integrity/copies.json) ---------------------------------------------------------------

COPY = "integrity:possible-copy"


def write_copies(klass, *pairs: tuple[str, str]) -> None:
    """A class comparison that flagged these pairs (in place of the one grade --all wrote)."""
    found = [
        CopyPair(student_a=a, student_b=b, reasons=["identical-predictions"], identical_predictions=True,
                 identical_weights=False, agreement=1.0, kappa=0.9, kappa_bar=0.4, shared_mistakes=9,
                 shared_mistake_agreement=1.0, accuracy_a=0.5, accuracy_b=0.5,
                 message=f"{a} and {b} predict the same class on every test image.")
        for a, b in pairs
    ]  # fmt: skip
    write_copy_report(CopyReport(students=6, images=100, rule="the test's", pairs=found), klass.results)


def waiting_in_summary(klass) -> tuple[int, str]:
    """(the number `grader summary` says waits for a TA, its line)."""
    out = io.StringIO()
    summary_main(results=klass.results, submissions=klass.submissions, console=Console(file=out, width=400))
    found = re.search(r"(\d+) answers, errors or integrity flags still wait.*", out.getvalue())
    return (int(found.group(1)), found.group(0)) if found else (0, "")


def decide_copy(session: ReviewSession, student: str, points: str, comment: str = ""):
    case = session.find_case(student, COPY)
    assert case is not None, f"{student} has no copy case"
    standing = session.queue.standing.get((student, COPY))
    return session.decide_case(student=student, subject=COPY, points=points, comment=comment, decided_by="Kim",
                               seen_sha256=case.text_sha256, expected=standing.id if standing else None)  # fmt: skip


def test_a_copied_model_waits_before_the_answers_and_a_blank_decision_dismisses_it(klass):
    write_copies(klass, ("alice", "bob"))
    session = session_of(klass)
    cases = len(session.queue.cases)
    assert all(entry.kind != "answer" for entry in session.queue.entries[:cases])
    assert {("alice", COPY), ("bob", COPY)} <= {entry.key for entry in session.queue.entries[:cases]}
    case = session.find_case("alice", COPY)
    assert (case.kind, case.item, case.title) == ("integrity", "exercise1", "integrity: possible copy")
    assert "alice and bob predict the same class" in case.message
    assert "identical-predictions" in dict(case_view(session, case).evidence)["with bob"]
    waiting, words = waiting_in_summary(klass)
    assert "alice" in words
    before = load_result(result_path(klass.results, "alice")).final_points

    assert decide_copy(session, "alice", "").ok
    assert session.queue.entry("alice", COPY) is None and session.queue.entry("bob", COPY) is not None
    alice = load_result(result_path(klass.results, "alice"))
    assert [(d.subject, d.points, d.status) for d in alice.decisions] == [(COPY, None, "applied")]
    assert alice.final_points == before  # dismissed: no change
    after, words = waiting_in_summary(klass)
    assert after == waiting - 1 and "alice" not in words


def test_points_on_a_copied_model_set_exercise1_without_the_partner_reaching_the_student(klass, tmp_path):
    write_copies(klass, ("alice", "bob"))
    assert decide_copy(session_of(klass), "alice", "10", "We talked about your model; see me in office hours.").ok
    alice = load_result(result_path(klass.results, "alice"))
    assert alice.final_points.by_item["exercise1"] == 10.0
    row = export_rows(klass, tmp_path)["alice"]
    words = feedback(row)
    assert "Exercise 1 set to 10 by Kim after review" in words and "see me in office hours" in words
    assert "bob" not in words and "predict the same class" not in words
    build_reports(results=klass.results, rubric=klass.rubric, output=tmp_path / "report", exports=None)
    page = (tmp_path / "report" / "students" / "alice.html").read_text(encoding="utf-8")
    assert "see me in office hours" in page
    assert "bob" not in page and "predict the same class" not in page
    assert float(export_rows(klass, tmp_path, "full")["alice"]["final_exercise1"]) == 10.0


def test_another_partner_in_copies_json_reopens_the_decision_and_the_same_pairing_keeps_it(klass):
    write_copies(klass, ("alice", "bob"))
    session = session_of(klass)
    assert decide_copy(session, "alice", "").ok
    write_copies(klass, ("alice", "bob"))  # the same pairing, written again by the next grade --all
    session.refresh()
    assert session.queue.entry("alice", COPY) is None

    write_copies(klass, ("alice", "cat"))
    session.refresh()  # what every page does first
    entry = session.queue.entry("alice", COPY)
    assert entry is not None and entry.reopened and "cat" in entry.reason
    assert session.queue.entry("bob", COPY) is None and session.queue.entry("cat", COPY) is not None
    stored = load_result(result_path(klass.results, "alice"))
    assert [(d.subject, d.status) for d in stored.decisions] == [(COPY, "reopened")]
    assert "alice" in waiting_in_summary(klass)[1]


def test_a_regrade_that_pairs_a_student_otherwise_reopens_the_decision_in_the_stored_result(klass, tmp_path):
    """grade --all compares the class after saving the results: the decisions on copies follow the new report."""
    write_copies(klass, ("alice", "bob"))
    assert decide_copy(session_of(klass), "bob", "").ok
    grade(klass.root, klass.labels)  # the fake models pair bob with cat and dan, never with alice
    assert "alice" not in read_copy_report(klass.results).flagged_students
    bob = load_result(result_path(klass.results, "bob"))
    assert [(d.subject, d.status) for d in bob.decisions] == [(COPY, "reopened")]
    assert "bob" in waiting_in_summary(klass)[1]


def test_a_copy_case_of_a_student_named_like_markup_is_shown_as_text(served):
    client = Client(served.server)
    client.open(served.server.url.removeprefix(client.base))
    for student in (HOSTILE, "dan"):  # the grade --all of the fixture pairs them
        query = urllib.parse.urlencode({"student": student, "subject": COPY})
        status, page = client.open(f"/case?{query}")
        assert status == 200 and "possible copy" in page
        assert "<i onmouseover" not in page and "&lt;i onmouseover=alert(1)&gt;mallory" in page


# --- the queue and the groups ------------------------------------------------------------------------------------


def test_the_queue_orders_by_doubt_and_reorders_after_a_decision_rescoring_alike_answers(klass):
    results, _ = load_results(klass.results)
    queue = build_queue(results, [])
    priorities = [entry.priority for entry in queue.entries]
    assert priorities == sorted(priorities, reverse=True)
    bob = answer(klass, "bob", 1)
    decision = Decision(student="bob", subject="q1", text_sha256=bob.text_sha256, item="exercise2", points=0.75,
                        decided_by="Kim", id=1)  # fmt: skip
    queue.record([decision])
    assert queue.entry("bob", "q1") is None
    cat = queue.suggestions[("cat", 1)]
    assert cat.points == 0.75 and "bob" in cat.followed  # the same words: the TA's grade follows
    assert [entry.priority for entry in queue.entries] == sorted((e.priority for e in queue.entries), reverse=True)


def test_identical_words_are_always_one_group_and_unlike_answers_are_not():
    texts = ["An autoencoder learns without labels.", "an autoencoder learns, without labels!",
             "They need a lot of data and compute.", "", ""]  # fmt: skip
    groups = group_answers(texts)
    assert sorted(sorted(group.members) for group in groups) == [[0, 1], [2], [3, 4]]
    for group in groups:
        assert sorted(group.members) == sorted(index for sub in group.subgroups for index in sub)


def test_average_linkage_merges_while_the_average_reaches_the_threshold():
    similarity = [[1.0, 0.9, 0.2], [0.9, 1.0, 0.5], [0.2, 0.5, 1.0]]
    assert sorted(map(sorted, average_linkage(similarity, [1, 1, 1], 0.8))) == [[0, 1], [2]]
    assert sorted(map(sorted, average_linkage(similarity, [1, 1, 1], 0.3))) == [[0, 1, 2]]  # (0.2 + 0.5) / 2


# --- the web app over HTTP --------------------------------------------------------------------------------------


class Client:
    """A browser without JavaScript: keeps cookies, follows redirects, reports refusals as (status, body)."""

    def __init__(self, server: ReviewServer) -> None:
        self.base = f"http://127.0.0.1:{server.port}"
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def open(self, path: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body, headers=headers or {})
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8")

    def csrf(self) -> str:
        status, page = self.open("/")
        assert status == 200, page
        return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


@pytest.fixture
def served(klass):
    server = ReviewServer(session_of(klass), ta="Kim").start()
    yield SimpleNamespace(server=server, klass=klass)
    server.close()


def test_a_request_without_the_token_is_refused(served):
    server = served.server
    anonymous = Client(server)
    for path in ("/", "/question/1", "/case?student=eve&subject=error", "/?token=wrong"):
        status, body = anonymous.open(path)
        assert status == 403 and "refused" in body, path
    assert anonymous.open("/decide", {"question": "1", "student": "bob", "points": "1"})[0] == 403
    status, page = anonymous.open(server.url.removeprefix(anonymous.base))
    assert status == 200 and "Review queue" in page
    assert anonymous.open("/question/1")[0] == 200  # the token became a cookie


def test_a_form_without_its_value_or_from_another_site_is_refused(served):
    client = Client(served.server)
    client.open(served.server.url.removeprefix(client.base))
    bob = answer(served.klass, "bob", 1)
    form = {"question": "1", "student": "bob", "points": "1", "sha256": bob.text_sha256, "scope": "answer"}
    assert client.open("/decide", form)[0] == 403
    assert client.open("/decide", {**form, "csrf": "guessed"})[0] == 403
    other_site = {"Origin": "http://evil.example"}
    assert client.open("/decide", {**form, "csrf": client.csrf()}, headers=other_site)[0] == 403
    assert DecisionStore.of_results(served.klass.results).active() == []
    status, page = client.open("/decide", {**form, "csrf": client.csrf()})
    assert status == 200 and "recorded 1 decision" in page
    assert [d.student for d in DecisionStore.of_results(served.klass.results).active()] == ["bob"]


def test_a_request_for_another_host_name_is_refused(served):
    client = Client(served.server)
    rebound = {"Host": f"attacker.example:{served.server.port}"}
    assert client.open(served.server.url.removeprefix(client.base), headers=rebound)[0] == 403


def test_grading_a_group_over_http_records_one_decision_per_member_with_its_own_text(served):
    client = Client(served.server)
    client.open(served.server.url.removeprefix(client.base))
    status, page = client.open("/question/1")
    card = page[page.index('<input type="hidden" name="student" value="bob">') :]
    group = re.search(r'name="group_key" value="([^"]+)"', card).group(1)
    form = {
        "csrf": client.csrf(),
        "question": "1",
        "student": "bob",
        "points": "0.25",
        "scope": "group",
        "sha256": answer(served.klass, "bob", 1).text_sha256,
        "group_key": group,
        "comment": "Labels: no.",
    }
    status, page = client.open("/decide", form)
    assert status == 200 and "recorded 3 decisions" in page, page
    decided = {d.student: d for d in DecisionStore.of_results(served.klass.results).active()}
    assert set(decided) == {"bob", "cat", "dan"}
    for student, decision in decided.items():
        assert decision.text_sha256 == answer(served.klass, student, 1).text_sha256
        assert (decision.points, decision.comment, decision.decided_by) == (0.25, "Labels: no.", "Kim")
    assert decided["dan"].text_sha256 != decided["bob"].text_sha256
    stale = {**form, "group_key": "0" * 16, "student": "alice", "sha256": answer(served.klass, "alice", 1).text_sha256}
    status, page = client.open("/decide", stale)
    assert "changed since the page was drawn" in page or "no group" in page


def test_student_text_is_shown_as_text_on_every_page(served):
    client = Client(served.server)
    client.open(served.server.url.removeprefix(client.base))
    for path in ("/", "/question/1", "/question/2"):
        status, page = client.open(path)
        assert status == 200
        assert "<script>window.pwned" not in page and "<img src=x" not in page and "<i onmouseover" not in page
        assert "\u202e" not in page
    assert "&lt;i onmouseover=alert(1)&gt;mallory" in client.open("/question/1")[1]
    assert "\\u202eevil" in client.open("/question/1")[1]


def test_the_token_becomes_a_strict_cookie_and_pages_say_what_they_may_load(served):
    connection = http.client.HTTPConnection("127.0.0.1", served.server.port, timeout=30)
    connection.request("GET", served.server.url.split(str(served.server.port), 1)[1])
    response = connection.getresponse()
    cookie = response.getheader("Set-Cookie")
    assert response.status == 303 and response.getheader("Location") == "/"
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and served.server.token in cookie
    connection.close()
    client = Client(served.server)
    client.open(served.server.url.removeprefix(client.base))
    response = client.opener.open(client.base + "/question/1")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "form-action 'self'" in policy and "script-src 'sha256-" in policy
    assert response.headers["Referrer-Policy"] == "same-origin" and response.headers["Cache-Control"] == "no-store"


def test_the_review_verb_refuses_a_results_folder_that_is_not_there(tmp_path, capsys):
    assert cli_main(["review", "--results", str(tmp_path / "nowhere")]) == 2
    assert "no results folder" in capsys.readouterr().err


def test_text_hash_is_the_sha256_of_the_answer_as_stored():
    assert text_hash("a") == "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
    assert len(text_hash("\udcff broken")) == 64  # a lone surrogate from a broken file is hashed, not refused
