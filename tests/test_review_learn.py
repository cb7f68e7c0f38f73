"""grader/review/learn.py (rescoring from a TA's decisions, p_off) and benchmarks/bench_review.py (its measure)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import yaml

from benchmarks.bench_review import (
    GradedSetError,
    knowing_the_grades,
    measure,
    ranking_auc,
    read_graded_set,
    simulate_ta,
)
from grader.review.learn import AnswerItem, TADecision, machine_features, suggest

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
CLEAR = "1/1; 5 of 6 key ideas stated; closeness to the model answer 0.91; in other words: autoencoder."
DOUBTFUL = "0.5/1; 1 of 6 key ideas stated; closeness to the model answer 0.55; key ideas and closeness disagree."
UNREAD = "0/1 until a TA grades it: written mostly in CJK script; the checker reads English only."


def item(student: str, text: str, points: float = 0.5, reason: str = DOUBTFUL, question: int = 1) -> AnswerItem:
    return AnswerItem(
        student=student,
        question=question,
        text=text,
        text_hash=hashlib.sha256(text.encode()).hexdigest(),
        machine_points=points,
        max_points=1.0,
        machine_reason=reason,
    )


def decision(answer: AnswerItem, points: float, minutes: int = 0) -> TADecision:
    return TADecision(
        student=answer.student,
        question=answer.question,
        text_hash=answer.text_hash,
        points=points,
        decided_by="Kim",
        decided_at=START + timedelta(minutes=minutes),
    )


ANSWERS = [
    item("alice", "Yes, an autoencoder compresses its input into a small code without any labels at all."),
    item("bob", "Yes: an autoencoder compresses its input into a small code, without any labels at all!"),
    item("carol", "Neural networks need large labelled datasets and GPUs to be trained well.", 0.25),
    item("dave", "", 0.0, "No answer to question 1 was found in the file."),
]


@pytest.mark.parametrize("vectors", [None, np.eye(4)])
def test_without_decisions_every_answer_keeps_the_machines_points_and_reason(vectors):
    made = suggest(1, ANSWERS, [], vectors)
    assert [(s.student, s.points, s.reason, s.followed) for s in made] == [
        (a.student, a.machine_points, a.machine_reason, []) for a in ANSWERS
    ]


def test_an_answer_nearly_the_same_as_a_decided_one_takes_the_tas_points_and_names_its_student():
    made = {s.student: s for s in suggest(1, ANSWERS, [decision(ANSWERS[0], 1.0)], None)}
    assert made["alice"].points == 1.0 and made["alice"].p_off == 0.0
    assert made["bob"].points == 1.0 and made["bob"].followed == ["alice"] and "alice" in made["bob"].reason
    assert made["carol"].points == 0.25 and made["carol"].followed == []  # unlike alice's: the machine's stands


def test_sentence_vectors_choose_the_neighbours_when_given():
    vectors = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.99, 0.1, 0.0], [0.0, 1.0, 0.0]])
    made = {s.student: s for s in suggest(1, ANSWERS, [decision(ANSWERS[0], 0.0)], vectors)}
    assert made["carol"].points == 0.0 and made["carol"].followed == ["alice"]  # close in the given vectors
    assert made["bob"].points == 0.5 and made["bob"].followed == []  # far in them, whatever the words


def test_a_decision_on_an_answer_since_changed_is_not_its_grade_and_the_latest_decision_counts():
    changed = [ANSWERS[0].model_copy(update={"text_hash": "0" * 64}), *ANSWERS[1:]]
    made = suggest(1, changed, [decision(ANSWERS[0], 1.0)], None)
    assert made[0].p_off > 0 and made[0].reason != "graded by the TA"
    twice = [decision(ANSWERS[2], 1.0, minutes=1), decision(ANSWERS[2], 0.0, minutes=0)]
    assert suggest(1, ANSWERS, twice, None)[2].points == 1.0


def test_the_same_words_as_a_decided_answer_take_its_points_but_an_empty_answer_follows_no_other():
    copied = ANSWERS[2].model_copy(update={"student": "erin"})
    empty = item("fred", "", 0.0, "No answer to question 1 was found in the file.")
    vectors = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0], [0, 0, 1.0]])
    decided = [decision(ANSWERS[2], 1.0), decision(ANSWERS[3], 0.5)]
    made = {s.student: s for s in suggest(1, [*ANSWERS, copied, empty], decided, vectors)}
    assert made["erin"].points == 1.0 and made["erin"].followed == ["carol"]  # the text, whatever its vector
    assert made["erin"].p_off == 0.0  # the TA has decided these very words: nothing for the queue's top
    assert made["bob"].p_off > 0  # close to a decided answer is not the same
    assert "the same answer as carol's" in made["erin"].reason
    assert made["fred"].points == 0.0 and made["fred"].followed == []  # why dave's was empty is not why fred's is


def test_p_off_is_a_chance_and_higher_where_the_scorers_verdict_is_doubtful():
    answers = [
        item("sure", "An autoencoder learns a compact code without labels; SOMs cluster.", 1.0, CLEAR),
        item("unsure", "They kind of group things, maybe, with some network or other.", 0.5, DOUBTFUL),
        item("unread", "可以。自编码器在没有标签的情况下学习压缩表示。", 0.0, UNREAD),
    ]
    p_off = {s.student: s.p_off for s in suggest(1, answers, [], None)}
    assert all(0.0 <= p <= 1.0 for p in p_off.values())
    assert p_off["sure"] < p_off["unsure"] < p_off["unread"]
    assert machine_features(answers[0])["ideas"] == pytest.approx(5 / 6)
    assert machine_features(answers[0])["closeness"] == pytest.approx(0.91)


def test_a_students_other_answers_graded_far_from_this_ones_points_raise_its_p_off():
    answers = [item("zoe", "They learn features from data and generalise to new images well.", 1.0, CLEAR)]
    other = item("zoe", "No, they always need labels.", 0.75, DOUBTFUL, question=2)
    before = suggest(1, answers, [], None)[0].p_off
    after = suggest(1, answers, [decision(other, 0.0)], None)[0].p_off
    assert after > before


# --- the bench's graded sets -----------------------------------------------------------------------------------


def write_issue_layout(folder, grades):
    folder.mkdir()
    for name in grades:
        (folder / name).mkdir()
        (folder / name / "answers.md").write_text(f"1. Yes, {name} says an autoencoder.\n2. Much data.\n")
    (folder / "grades.json").write_text(json.dumps(grades))


def test_the_bench_reads_a_set_of_student_folders_with_grades_json(tmp_path):
    write_issue_layout(tmp_path / "set", {"bo": [1, 0.5], "al": [0.25, 0]})
    files = read_graded_set(tmp_path / "set")
    assert [(f.name, f.path.name, f.points) for f in files] == [
        ("al", "answers.md", [0.25, 0.0]),
        ("bo", "answers.md", [1.0, 0.5]),
    ]


def test_the_bench_reads_the_labs_layout_of_files_and_graded_yaml(tmp_path):
    (tmp_path / "good_01.md").write_text("1. Yes.\n2. Data.\n3. Overfitting.\n4. Nonlinear.\n")
    entry = {"file": "good_01.md", "kind": "good", "points": {1: 1.0, 2: 0.75, 3: 0.5, 4: 0.0}}
    entry["why"] = {n: "reason" for n in (1, 2, 3, 4)}
    (tmp_path / "graded.yaml").write_text(yaml.safe_dump({"answers": [entry]}))
    files = read_graded_set(tmp_path)
    assert [(f.name, f.points) for f in files] == [("good_01.md", [1.0, 0.75, 0.5, 0.0])]


@pytest.mark.parametrize(
    ("grades", "message"),
    [({"al": "full marks"}, "al: expected a list of points"), ({"nobody": [1]}, "nobody: no folder")],
)
def test_a_malformed_set_is_an_error_naming_the_file_and_the_student(tmp_path, grades, message):
    write_issue_layout(tmp_path / "set", {"al": [1]})
    (tmp_path / "set" / "grades.json").write_text(json.dumps(grades))
    with pytest.raises(GradedSetError, match=message) as raised:
        read_graded_set(tmp_path / "set")
    assert "grades.json" in str(raised.value)


def test_a_folder_in_neither_layout_is_refused_by_name(tmp_path):
    with pytest.raises(GradedSetError, match="neither grades.json"):
        read_graded_set(tmp_path)


def test_measure_counts_answers_within_a_quarter_and_files_off_by_more_than_half():
    truth = {("a", 1): 1.0, ("a", 2): 1.0, ("a", 3): 1.0, ("b", 1): 0.0, ("b", 2): 0.5, ("b", 3): 0.0}
    got = {("a", 1): 0.75, ("a", 2): 0.75, ("a", 3): 0.75, ("b", 1): 0.0, ("b", 2): 0.0, ("b", 3): 0.0}
    within, files_off, mae = measure(got, truth)
    assert within == pytest.approx(5 / 6) and files_off == 1 and mae == pytest.approx(1.25 / 6)


def test_ranking_auc_is_the_chance_a_miss_is_ordered_before_a_right_answer():
    off = np.array([1.0, 0.0, 1.0, 0.0])
    assert ranking_auc(np.array([0.9, 0.1, 0.8, 0.2]), off) == 1.0
    assert ranking_auc(np.array([0.1, 0.9, 0.2, 0.8]), off) == 0.0
    assert ranking_auc(np.array([0.5, 0.5, 0.9, 0.1]), off) == pytest.approx(0.875)  # a tie counts half
    assert ranking_auc(np.array([0.5, 0.5]), np.array([0.0, 0.0])) is None


def test_the_simulated_ta_fixes_the_queues_first_answers_and_all_of_them_at_a_full_budget():
    truth = {(a.student, 1): p for a, p in zip(ANSWERS, (1.0, 1.0, 0.0, 0.0), strict=True)}
    outcomes = simulate_ta(ANSWERS, truth, {1: None}, (0.0, 0.25, 1.0))
    assert [o.decided for o in outcomes] == [0, 1, 4]
    assert outcomes[0].suggestions[("alice", 1)].points == 0.5
    assert outcomes[-1].within == 1.0 and outcomes[-1].mae == 0.0 and outcomes[-1].files_off == 0
    first = max(outcomes[0].suggestions.values(), key=lambda s: s.p_off)
    assert outcomes[1].suggestions[(first.student, 1)].reason == "graded by the TA"


def test_a_queue_knowing_the_grades_spends_the_budget_on_the_machines_misses_first():
    truth = {("alice", 1): 1.0, ("bob", 1): 1.0, ("carol", 1): 0.25, ("dave", 1): 1.0}  # carol's alone is right
    outcomes = simulate_ta(ANSWERS, truth, {1: None}, (0.0, 0.5), knowing_the_grades(truth))
    assert outcomes[0].within == 0.25
    # two decisions, each on a miss (bob's, nearly alice's words, is rescored from hers): nothing left off
    assert outcomes[1].within == 1.0 and outcomes[1].files_off == 0
    assert outcomes[1].suggestions[("carol", 1)].reason != "graded by the TA"


def test_a_set_seeded_by_an_earlier_one_starts_from_its_grades_and_measures_only_its_own_answers():
    from benchmarks.bench_review import GradedSet, MeasuredSet, seeded

    earlier_items = [item("old", ANSWERS[0].text)]
    earlier = MeasuredSet(GradedSet("last-year", [], True), earlier_items, {("old", 1): 1.0}, {1: None})
    truth = {(a.student, 1): p for a, p in zip(ANSWERS, (1.0, 1.0, 0.0, 0.0), strict=True)}
    outcomes = simulate_ta(ANSWERS, truth, {1: None}, (0.0,), seeded([earlier]))
    alice = outcomes[0].suggestions[("alice", 1)]
    assert (alice.points, alice.followed) == (1.0, ["last-year/old"])  # the same words, graded last year
    assert set(outcomes[0].suggestions) == set(truth)  # the earlier answer is neither picked nor measured
    unseeded = simulate_ta(ANSWERS, truth, {1: None}, (0.0,))
    assert outcomes[0].within > unseeded[0].within
