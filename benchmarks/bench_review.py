"""`make bench-review SET=DIR`: a simulated TA works through the review queue; how right are the grades then?

    python -m benchmarks.bench_review [DIR ...] [--method auto|minilm|tfidf] [--class-size 300]

A graded set is a folder in one of two layouts:
- `NAME/answers.md` (any answers file the submission contract accepts) per student, and `grades.json`:
  `{NAME: [points of question 1, 2, ...]}`;
- the lab's layout (tests/data/exercise2_lab*): one answers file per student and `graded.yaml`.

Every answers file is graded as Exercise 2 grades it (grader.answers.grade_answers, the packaged rubric,
the handout beside the repository when it is there, as `make bench-answers` grades). Then a simulated TA
works down the queue: takes the undecided answer most likely off (highest p_off), gives it the set's grade,
and the answers are rescored from the decisions so far (grader.review.learn.suggest, every question, since a
student's graded answers weigh on the others) before the next pick. When budget x answers are decided, for
the budgets 0, 0.1, 0.2 and 0.3, every answer's current points are compared with the set's grades:

    review tuning|never-tuned SET budget=B within=W files_off=N mae=M decided=D answers=A

within: share of answers within 0.25 of the set's grade; files_off: files whose total is off by more than 0.5;
mae: mean absolute error per answer. Each set's lines again as `review-oracle`, for a queue that knew which
answers the machine got wrong: how far a perfect p_off could take each budget. Before them, how well p_off
foretold the machine's misses (budget 0):

    p_off tuning|never-tuned SET said=mean p_off off=share off by 0.5 or more brier=B auc=A needs_review=N catching=K/M

auc: the chance that a missed answer has a higher p_off than a right one (how well the queue's order finds the
misses, whatever the needs-review threshold); catching: misses among the answers needs_review flags.

The first set is split in two, as for `make bench-answers`: every other file by name (from the first) is
tuning data, the rest is measured only; the lab's dev set is tuning data; every other set is never tuned on.
Last, for a generated class of 300 students (answers drawn from the sets'), the seconds to open the review
queue (grader.review.queue.build_queue) and to re-order it after one decision (ReviewQueue.record).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
import numpy as np
from pydantic import BaseModel, Field, ValidationError

from benchmarks.lab_set import load_lab_set
from grader.answers import find_answers_file
from grader.answers.rubric import Exercise2Rubric
from grader.answers.score import grade_answers
from grader.answers.similarity import get_method, resolve_method_name
from grader.results.model import InputHashes, Result
from grader.review.learn import NEEDS_REVIEW_P_OFF, AnswerItem, Suggestion, TADecision, suggest
from grader.review.subjects import text_hash

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT / "tests" / "data"
FIRST_SET = DATA / "exercise2_lab"
TUNING_SETS = (DATA / "exercise2_lab_dev",)
LAB_TEXT = REPO_ROOT.parent / "shared" / "docs" / "lab8-tutorial.txt"
GRADES_FILE = "grades.json"
LAB_MANIFEST = "graded.yaml"
BUDGETS = (0.0, 0.1, 0.2, 0.3)
CLASS_SIZE = 300
SIMULATION_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class GradedSetError(ValueError):
    """A graded set is missing or malformed; the message names the file and the problem."""


class GradedFile(BaseModel):
    """One student's answers file and the points a TA gives each question (question 1 first)."""

    name: str
    path: Path
    points: list[float] = Field(description="The set's grade of question 1, 2, ...")


def _read_grades_json(folder: Path) -> list[GradedFile]:
    grades_path = folder / GRADES_FILE
    try:
        grades = json.loads(grades_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GradedSetError(f"{grades_path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GradedSetError(f"{grades_path}: not valid JSON ({exc})") from None
    if not isinstance(grades, dict):
        raise GradedSetError(f"{grades_path}: expected an object {{NAME: [points per question]}}")
    files = []
    for name, points in sorted(grades.items()):
        folder_of = folder / name
        if not isinstance(points, list) or not all(isinstance(p, int | float) for p in points) or not points:
            raise GradedSetError(f"{grades_path}: {name}: expected a list of points per question, got {points!r}")
        if Path(name).name != name or not folder_of.is_dir():
            raise GradedSetError(f"{grades_path}: {name}: no folder {folder_of}")
        answers = find_answers_file(folder_of)
        if answers is None:
            raise GradedSetError(f"{grades_path}: {name}: no answers file (e.g. answers.md) in {folder_of}")
        files.append(GradedFile(name=name, path=answers, points=[float(p) for p in points]))
    return files


def _read_lab_layout(folder: Path) -> list[GradedFile]:
    return [
        GradedFile(name=e.file, path=e.path, points=[e.points[n] for n in sorted(e.points)])
        for e in load_lab_set(folder)
    ]


def read_graded_set(folder: Path) -> list[GradedFile]:
    """A set in either layout, files in name order; a folder in neither is a GradedSetError naming it."""
    folder = Path(folder)
    if (folder / GRADES_FILE).is_file():
        files = _read_grades_json(folder)
    elif (folder / LAB_MANIFEST).is_file():
        try:
            files = _read_lab_layout(folder)
        except (ValueError, ValidationError) as exc:
            raise GradedSetError(str(exc)) from None
    else:
        raise GradedSetError(f"{folder}: neither {GRADES_FILE} (NAME/answers.md layout) nor {LAB_MANIFEST} found")
    if not files:
        raise GradedSetError(f"{folder}: no graded answers")
    return sorted(files, key=lambda f: f.name)


@dataclass
class GradedSet:
    """A set's part on one bench line: its files and whether settings were chosen on them."""

    label: str
    files: list[GradedFile]
    tuning: bool


def bench_sets(folders: list[Path]) -> list[GradedSet]:
    """The sets to measure, the first set split in its tuning and measured halves."""
    out = []
    for folder in folders:
        files = read_graded_set(folder)
        label = folder.name.removeprefix("exercise2_").replace("_", "-")
        if folder.resolve() == FIRST_SET.resolve():
            out += [
                GradedSet(f"{label}-tuning-half", files[0::2], True),
                GradedSet(f"{label}-other-half", files[1::2], False),
            ]
        else:
            out.append(GradedSet(label, files, any(folder.resolve() == t.resolve() for t in TUNING_SETS)))
    return out


def bench_rubric() -> Exercise2Rubric:
    """The packaged rubric, with the handout to spot copies when it is here (as `make bench-answers` grades)."""
    rubric = Exercise2Rubric.default()
    return rubric.model_copy(update={"lab_text": LAB_TEXT}) if LAB_TEXT.is_file() else rubric


def machine_items(files: list[GradedFile], rubric: Exercise2Rubric, method: str) -> list[AnswerItem]:
    """Every answer of every file, as the checker grades it; a question it did not find is an empty answer."""
    items = []
    for graded in files:
        result = grade_answers(graded.path, rubric, method=method)
        by_number = {q.number: q for q in result.questions}
        for number, q_rubric in enumerate(rubric.questions, start=1):
            q = by_number.get(number)
            text = q.answer_text if q else ""
            items.append(
                AnswerItem(
                    student=graded.name,
                    question=number,
                    text=text,
                    text_hash=text_hash(text),
                    machine_points=q.points if q else 0.0,
                    max_points=q.max_points if q else q_rubric.points,
                    machine_reason=q.reason if q else (result.error or "no answer found"),
                )
            )
    return items


def question_vectors(items: list[AnswerItem], method: str) -> dict[int, np.ndarray | None]:
    """Each question's answer vectors in the order of its items: MiniLM's sentence vectors, or None (TF-IDF
    inside suggest()) when the answers were graded by TF-IDF."""
    by_question: dict[int, list[str]] = {}
    for item in items:
        by_question.setdefault(item.question, []).append(item.text)
    if method != "minilm":
        return {question: None for question in by_question}
    encoder = get_method("minilm")
    return {question: encoder.embed(texts) for question, texts in by_question.items()}


Key = tuple[str, int]


@dataclass
class Outcome:
    """A set's answers after a budget's decisions, measured against its grades."""

    budget: float
    within: float
    files_off: int
    mae: float
    decided: int
    suggestions: dict[Key, Suggestion]


def measure(points: dict[Key, float], truth: dict[Key, float]) -> tuple[float, int, float]:
    """(share within 0.25, files whose total is off by more than 0.5, mean absolute error)."""
    errors = {key: points.get(key, 0.0) - grade for key, grade in truth.items()}
    by_file: dict[str, float] = {}
    for (student, _), error in errors.items():
        by_file[student] = by_file.get(student, 0.0) + error
    absolute = [abs(e) for e in errors.values()]
    within = sum(e <= 0.25 + 1e-9 for e in absolute) / len(absolute)
    return within, sum(abs(e) > 0.5 + 1e-9 for e in by_file.values()), sum(absolute) / len(absolute)


Suggester = Callable[[int, list[AnswerItem], list[TADecision], "np.ndarray | None"], list[Suggestion]]


def simulate_ta(
    items: list[AnswerItem],
    truth: dict[Key, float],
    vectors: dict[int, np.ndarray | None],
    budgets: tuple[float, ...] = BUDGETS,
    suggester: Suggester = suggest,
) -> list[Outcome]:
    """A TA grades answers in the queue's order, always the undecided one most likely off, giving each its true
    grade; each decision rescores its question before the next pick. Measured when round(budget x answers)
    are decided, for each budget (one pass: a smaller budget's decisions are the first of a larger one's)."""
    by_question: dict[int, list[AnswerItem]] = {}
    for item in items:
        by_question.setdefault(item.question, []).append(item)
    decisions: list[TADecision] = []
    current: dict[Key, Suggestion] = {}

    def rescore(question: int) -> None:
        made = suggester(question, by_question[question], decisions, vectors[question])
        current.update({(s.student, s.question): s for s in made})

    for question in by_question:
        rescore(question)
    hashes = {(i.student, i.question): i.text_hash for i in items}
    undecided = set(current)
    outcomes = []
    for budget in sorted(budgets):
        while len(items) - len(undecided) < round(budget * len(items)) and undecided:
            key = min(undecided, key=lambda k: (-current[k].p_off, k[1], k[0]))
            undecided.discard(key)
            student, question = key
            decided_at = SIMULATION_START + timedelta(seconds=len(items) - len(undecided))
            decisions.append(
                TADecision(
                    student=student,
                    question=question,
                    text_hash=hashes[key],
                    points=truth[key],
                    decided_by="simulated TA",
                    decided_at=decided_at,
                )
            )
            for other in by_question:  # the student's other answers are weighed again too
                rescore(other)
        within, files_off, mae = measure({k: s.points for k, s in current.items()}, truth)
        outcomes.append(Outcome(budget, within, files_off, mae, len(items) - len(undecided), dict(current)))
    return outcomes


def ranking_auc(said: np.ndarray, off: np.ndarray) -> float | None:
    """The chance that an answer off has a higher p_off than one not off (ties count half); None without both."""
    missed, right = said[off > 0], said[off == 0]
    if not len(missed) or not len(right):
        return None
    higher = (missed[:, None] > right[None, :]).sum() + 0.5 * (missed[:, None] == right[None, :]).sum()
    return float(higher / (len(missed) * len(right)))


def calibration_line(name: str, suggestions: dict[Key, Suggestion], truth: dict[Key, float]) -> str:
    """How often the machine's points were off by 0.5 or more, against what p_off said, before any decision."""
    said = np.array([suggestions[k].p_off for k in truth])
    off = np.array([abs(suggestions[k].points - grade) >= 0.5 - 1e-9 for k, grade in truth.items()], dtype=float)
    flagged = said >= NEEDS_REVIEW_P_OFF
    auc = ranking_auc(said, off)
    ordering = "n/a" if auc is None else f"{auc:.2f}"
    return (
        f"p_off {name} said={said.mean():.3f} off={off.mean():.3f} brier={np.mean((said - off) ** 2):.3f} "
        f"auc={ordering} needs_review={int(flagged.sum())} catching={int((flagged & (off > 0)).sum())}/{int(off.sum())}"
    )


@dataclass
class MeasuredSet:
    """A set's answers as the checker graded them, with the set's grades and the answers' vectors."""

    graded: GradedSet
    items: list[AnswerItem]
    truth: dict[Key, float]
    vectors: dict[int, np.ndarray | None]

    @property
    def name(self) -> str:
        return f"{'tuning' if self.graded.tuning else 'never-tuned'} {self.graded.label}"


def grade_set(graded: GradedSet, rubric: Exercise2Rubric, method: str) -> MeasuredSet:
    items = machine_items(graded.files, rubric, method)
    truth = {(f.name, q): p for f in graded.files for q, p in enumerate(f.points, start=1)}
    missing = sorted({k for k in truth} - {(i.student, i.question) for i in items})
    if missing:  # the set grades more questions than the rubric has
        raise GradedSetError(f"{graded.label}: grades for questions the rubric does not have: {missing[:3]}")
    truth = {(i.student, i.question): truth.get((i.student, i.question), 0.0) for i in items}
    return MeasuredSet(graded, items, truth, question_vectors(items, method))


def seeded(earlier: list[MeasuredSet]) -> Suggester:
    """suggest() with the earlier sets' answers decided at their grades, as `grader review --seed-from` an earlier
    class: they teach the rescoring and are never picked nor measured."""
    seeds: dict[int, list[tuple[AnswerItem, float, np.ndarray | None]]] = {}
    for measured in earlier:
        for question, vectors in measured.vectors.items():
            answers = [i for i in measured.items if i.question == question]
            for k, item in enumerate(answers):
                renamed = item.model_copy(update={"student": f"{measured.graded.label}/{item.student}"})
                row = None if vectors is None else vectors[k]
                seeds.setdefault(question, []).append((renamed, measured.truth[(item.student, question)], row))

    def suggester(question, answers, decisions, vectors):
        earlier_answers = seeds.get(question, [])
        taught = [
            TADecision(
                student=item.student,
                question=question,
                text_hash=item.text_hash,
                points=points,
                decided_by="earlier class",
                decided_at=SIMULATION_START - timedelta(days=365),
            )  # fmt: skip
            for item, points, _ in earlier_answers
        ]
        rows = np.array([row for _, _, row in earlier_answers]) if vectors is not None and earlier_answers else None
        items = [item for item, _, _ in earlier_answers]
        return suggest(question, answers, taught + decisions, vectors, items, rows)

    return suggester


def knowing_the_grades(truth: dict[Key, float], suggester: Suggester = suggest) -> Suggester:
    """`suggester` with p_off replaced by how far its points are off from the set's grade (at most 1): the order of
    a queue that knew the machine's mistakes, the largest first, as far as ordering alone can take a budget."""

    def ordered(question, answers, decisions, vectors):
        made = suggester(question, answers, decisions, vectors)
        return [
            s.model_copy(update={"p_off": min(1.0, abs(s.points - truth[(s.student, s.question)]))})
            if s.reason != "graded by the TA"
            else s
            for s in made
        ]

    return ordered


def measure_set(measured: MeasuredSet, earlier: list[MeasuredSet] = (), oracle: bool = False) -> list[str]:
    """The p_off line and the review lines of one set; seeded by `earlier` sets' grades when given. `oracle`: the
    review lines again, for a queue ordered knowing the grades (review-oracle: what a perfect p_off would give)."""
    name = measured.name + (f" seeded-by={'+'.join(e.graded.label for e in earlier)}" if earlier else "")
    suggester = seeded(list(earlier)) if earlier else suggest
    outcomes = simulate_ta(measured.items, measured.truth, measured.vectors, suggester=suggester)
    lines = [calibration_line(name, outcomes[0].suggestions, measured.truth)]
    runs = [("review", outcomes)]
    if oracle:
        perfect = knowing_the_grades(measured.truth, suggester)
        runs.append(("review-oracle", simulate_ta(measured.items, measured.truth, measured.vectors, suggester=perfect)))
    lines += [
        f"{kind} {name} budget={o.budget:g} within={o.within:.1%} files_off={o.files_off} mae={o.mae:.3f} "
        f"decided={o.decided} answers={len(measured.items)}"
        for kind, found in runs
        for o in found
    ]
    return lines


def default_sets() -> list[Path]:
    """The lab's graded sets in tests/data: the first set, the dev set, then every later round."""
    later = sorted(p for p in DATA.glob(f"{FIRST_SET.name}_*") if p.is_dir() and p not in TUNING_SETS)
    return [FIRST_SET, *TUNING_SETS, *later]


def generated_class(pool: list[AnswerItem], size: int) -> list[Result]:
    """`size` students whose answers are drawn from the graded sets' answers, each made a little different
    (its own words differ by a tag), with the machine's points and reasons those answers had."""
    chosen = random.Random(0)
    by_question: dict[int, list[AnswerItem]] = {}
    for item in pool:
        by_question.setdefault(item.question, []).append(item)
    results = []
    for k in range(size):
        student = f"student{k:03d}"
        questions = []
        for number, items in sorted(by_question.items()):
            drawn = chosen.choice(items)
            text = f"{drawn.text} ({student})" if drawn.text else ""
            questions.append(
                {
                    "number": number,
                    "answer_text": text,
                    "points": drawn.machine_points,
                    "max_points": drawn.max_points,
                    "reason": drawn.machine_reason,
                }
            )
        total = sum(q["points"] for q in questions)
        answers = {"points": total, "max_points": float(len(questions)), "method": "bench", "questions": questions}
        results.append(
            Result(student=student, status="graded", answers=answers, inputs=InputHashes(grader_version="bench"))
        )
    return results


def queue_timings(pool: list[AnswerItem], size: int, method: str) -> list[str]:
    """Seconds to open the review queue of a generated class and to re-order it after one decision; and to open it
    again in a fresh session, which reads the answers' vectors from the file a first open left beside the results."""
    import tempfile

    from grader.review.queue import ReviewQueue, answer_vectors, build_queue, default_encoder
    from grader.review.session import CachedEncoder
    from grader.review.store import Decision
    from grader.review.subjects import answers_of
    from grader.review.vector_file import VECTORS_NAME, AnswerVectorFile, KeyedEncoder

    results = generated_class(pool, size)
    answers = [a for r in results for a in answers_of(r)]
    encode = default_encoder() if method == "minilm" else None
    if encode is not None:
        encode(["loads the model: once per process, not the class's cost"])
    with tempfile.TemporaryDirectory(prefix="bench-review-") as folder:
        beside_results = Path(folder)
        vector_file = AnswerVectorFile.of_results(beside_results, encode)
        first = CachedEncoder(encode, vector_file) if encode else None
        started = time.perf_counter()
        vectors = answer_vectors(answers, first)
        encoded = time.perf_counter() - started
        started = time.perf_counter()
        ReviewQueue(answers, [], [], vectors)
        ordered = time.perf_counter() - started
        started = time.perf_counter()
        queue = build_queue(results, [], encode=encode)  # the answers' vectors now in the encoder's memory
        opened = time.perf_counter() - started
        reopened = "open_from_disk=n/a (no sentence encoder: nothing is kept on disk)"
        if isinstance(encode, KeyedEncoder):
            again: list[str] = []

            def counting(texts: list[str]) -> np.ndarray:
                again.extend(texts)
                return encode(texts)

            fresh = CachedEncoder(KeyedEncoder(encode.key, counting), vector_file)
            started = time.perf_counter()
            build_queue(results, [], encode=fresh)
            from_disk = time.perf_counter() - started
            stored = (beside_results / VECTORS_NAME).stat().st_size
            reopened = (
                f"open_from_disk={from_disk:.2f}s (a fresh session's build_queue reading {stored / 1e6:.2f} MB of "
                f"vectors, {len(again)} answers encoded again)"
            )
    first_entry = queue.entries[0]
    answer = next(a for a in answers if (a.student, a.subject) == first_entry.key)
    decision = Decision(
        student=answer.student,
        subject=answer.subject,
        text_sha256=answer.text_sha256,
        item="exercise2",
        points=answer.max_points,
        decided_by="bench",
        id=1,
    )
    started = time.perf_counter()
    queue.record([decision])
    reordered = time.perf_counter() - started
    return [
        f"queue class={size} answers={len(answers)} vectors={method} open={opened:.2f}s reorder={reordered:.3f}s "
        f"{reopened} (build_queue with the answers' vectors known, then ReviewQueue.record of one decision); "
        f"a first open also encodes the answers and stores their vectors: {encoded:.2f}s, then orders them: "
        f"{ordered:.2f}s"
    ]


@click.command(help=__doc__.splitlines()[0])
@click.argument("sets", nargs=-1, type=click.Path(path_type=Path))
@click.option("--method", default="auto", help="Similarity method grading the answers: auto, minilm, tfidf.")
@click.option("--class-size", type=click.IntRange(min=0), default=CLASS_SIZE, help="Students of the generated class.")
@click.option("--seed/--no-seed", default=True, show_default=True,
              help="Also measure each set seeded by the tuning sets' grades, as by an earlier class.")  # fmt: skip
def main(sets: tuple[Path, ...], method: str, class_size: int, seed: bool) -> None:
    """SETS: graded sets (default: the lab's, tests/data/exercise2_lab*)."""
    method = resolve_method_name(method)
    print(f"method: {method}", flush=True)
    try:
        graded_sets = bench_sets(list(sets) or default_sets())
    except GradedSetError as exc:
        raise click.ClickException(str(exc)) from None
    rubric = bench_rubric()
    measured = [grade_set(graded, rubric, method) for graded in graded_sets]
    tuning = [m for m in measured if m.graded.tuning]
    summary: dict[bool, list[str]] = {True: [], False: []}
    for one in measured:
        # An earlier class: the tuning sets' grades (never the set's own, never a measured set's).
        earlier = [t for t in tuning if t is not one]
        lines = measure_set(one, oracle=True) + (measure_set(one, earlier) if earlier and seed else [])
        print("\n".join(lines), flush=True)
        summary[one.graded.tuning] += lines
    pool = [item for one in measured for item in one.items]
    print("\ntuning sets (settings chosen on these):\n" + "\n".join(summary[True] or ["  none"]))
    print("never tuned on:\n" + "\n".join(summary[False] or ["  none"]))
    if class_size:
        print("\n".join(queue_timings(pool, class_size, method)))


if __name__ == "__main__":
    main()
