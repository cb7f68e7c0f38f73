"""Measure the Exercise 2 checker the way it grades students, against human grades.

    python -m benchmarks.answers [--asag DIR] [--lab DIR ...] [--method auto|minilm|tfidf] [--fit]

Short-answer data sets: every CSV in DIR (default ../shared/data/asag; env ASAG overrides), columns
question_id, question, reference_answer, student_answer, score, and optionally score_grader1,
score_grader2. answers.csv is for development: --fit (the similarity calibration) reads it alone;
every other file is measured only. Each answer goes through the full scorer that grades Exercise 2
(sentences, similarity, rules, rounding) from its question's reference answer alone, since these
sets have no concept lists.

The lab's own sets (--lab, default tests/data/exercise2_lab and every exercise2_lab_* beside it): answers files
graded by a careful human, scored with the packaged rubric; agreement per question and per file, one line per
set, starting `tuning` or `never-tuned`. The dev set and every other file of the first set (by name,
`lab-tuning-half`) are for tuning; the first set's other half and every later round, written blind to the
checker, measure it on answers nobody tuned it on. A rule or setting stays only if the never-tuned lines do
not get worse.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np

from benchmarks.lab_set import LabAnswer, load_lab_set
from grader.answers.rubric import Exercise2Rubric, QuestionRubric, ScoringSettings
from grader.answers.score import grade_answers, score_question
from grader.answers.semantic import FEATURES, feature_matrix, score_features
from grader.answers.similarity import SimilarityMethod, get_method, resolve_method_name

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO_ROOT.parent / "shared" / "data" / "asag"
DEFAULT_LAB_SET = REPO_ROOT / "tests" / "data" / "exercise2_lab"
# Written and graded blind to the checker after it was built: "dev" for tuning, the rounds measured only.
DEFAULT_LAB_SETS = [DEFAULT_LAB_SET, *sorted(DEFAULT_LAB_SET.parent.glob(f"{DEFAULT_LAB_SET.name}_*"))]
TUNING_SET_NAMES = ("exercise2_lab_dev",)
DEFAULT_LAB_TEXT = REPO_ROOT.parent / "shared" / "docs" / "lab8-tutorial.txt"
DEV_FILE, HELDOUT_FILE = "answers.csv", "heldout.csv"
BOOTSTRAP_ROUNDS = 1000
LAB_KIND_LIMITS = {
    "keywords": ("<=", 0.25),
    "off-topic": ("<=", 0.25),
    "negated": ("<=", 0.25),
    "copied": ("<=", 0.25),
    "paraphrase": (">=", 0.75),
}


@dataclass
class Split:
    question_ids: list[str]
    questions: list[str]
    references: list[str]
    answers: list[str]
    scores: np.ndarray
    graders: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def max_score(self) -> float:
        return float(max(1.0, math.ceil(self.scores.max()))) if len(self.scores) else 1.0


def read_split(path: Path) -> Split:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    grader_columns = [c for c in (rows[0].keys() if rows else []) if c.startswith("score_grader")]
    return Split(
        [r["question_id"] for r in rows],
        [r["question"] for r in rows],
        [r["reference_answer"] for r in rows],
        [r["student_answer"] or "" for r in rows],
        np.array([float(r["score"]) for r in rows]),
        {c.removeprefix("score_"): np.array([float(r[c]) for r in rows]) for c in grader_columns},
    )


def background_corpus(split: Split) -> list[str]:
    return list(dict.fromkeys([*split.references, *split.questions, *split.answers]))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def bootstrap_interval(predicted: np.ndarray, human: np.ndarray, groups: list[str]) -> tuple[float, float]:
    """95% interval of r when whole questions are drawn again with replacement."""
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    members = [np.array(v) for v in by_group.values()]
    rng = np.random.default_rng(0)
    rs = []
    for _ in range(BOOTSTRAP_ROUNDS):
        picked = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        r = pearson(predicted[picked], human[picked])
        if not math.isnan(r):
            rs.append(r)
    return (float(np.percentile(rs, 2.5)), float(np.percentile(rs, 97.5))) if rs else (math.nan, math.nan)


def fit_calibration(features: np.ndarray, scores: np.ndarray, max_score: float) -> tuple[float, ...]:
    design = np.c_[np.ones(len(features)), features]
    weights, *_ = np.linalg.lstsq(design, scores / max_score, rcond=None)
    return tuple(round(float(w), 4) for w in weights)


def question_rubrics(split: Split) -> list[QuestionRubric]:
    """One rubric question per row, built from its question and reference alone (no concepts)."""
    built: dict[str, QuestionRubric] = {}
    for qid, question, reference in zip(split.question_ids, split.questions, split.references, strict=True):
        if qid not in built:
            built[qid] = QuestionRubric(
                number=len(built) + 1, prompt=question, reference=reference, points=split.max_score
            )
    return [built[qid] for qid in split.question_ids]


def similarity_scores(method: SimilarityMethod, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """(calibrated closeness, unrelated mask) of every answer, as grading computes them."""
    features = feature_matrix(method, split.answers, split.references, split.questions)
    return score_features(method.name, features, split.answers)


def full_scores(
    method: SimilarityMethod,
    split: Split,
    similarity: tuple[np.ndarray, np.ndarray],
    settings: ScoringSettings,
    meaning_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Points of every answer, as grading gives them (rounded to the rubric's step)."""
    questions = question_rubrics(split)
    semantic, unrelated = similarity
    return np.array(
        [
            score_question(
                q, answer, float(s), 0.0, settings, method=method, meaning_range=meaning_range, unrelated=bool(u)
            ).points
            for q, answer, s, u in zip(questions, split.answers, semantic, unrelated, strict=True)
        ]
    )


def report_split(name: str, split: Split, predicted: np.ndarray, label: str) -> str:
    r = pearson(predicted, split.scores)
    rmse = float(np.sqrt(np.mean((predicted - split.scores) ** 2)))
    return f"{label} {name} r={r:.3f} rmse={rmse:.3f} n={len(split.answers)}"


def detail_split(name: str, split: Split, predicted: np.ndarray) -> str:
    low, high = bootstrap_interval(predicted, split.scores, split.question_ids)
    parts = [
        f"  {name}: full scorer 95% interval over {len(set(split.question_ids))} questions [{low:.3f}, {high:.3f}]"
    ]
    for grader, scores in split.graders.items():
        parts.append(f"r vs {grader} {pearson(predicted, scores):.3f}")
    if len(split.graders) == 2:
        a, b = split.graders.values()
        parts.append(f"graders with each other {pearson(a, b):.3f}")
    return "; ".join(parts)


def asag_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.csv"))
    first = {HELDOUT_FILE: 0, DEV_FILE: 1}
    return sorted(files, key=lambda p: (first.get(p.name, 2), p.name))


def measure_asag(method: SimilarityMethod, folder: Path, started: float) -> list[str]:
    summary = []
    settings = Exercise2Rubric.default().scoring
    for path in asag_files(folder):
        split = read_split(path)
        similarity = similarity_scores(method, split)
        full = full_scores(method, split, similarity, settings)
        lines = [
            report_split(path.name, split, full, "asag"),
            detail_split(path.name, split, full),
            report_split(path.name, split, split.max_score * similarity[0], "asag-similarity"),
        ]
        print("\n".join(lines) + f"  ({time.perf_counter() - started:.0f}s so far)", flush=True)
        summary += [lines[0], lines[2]]
    return summary


def lab_label(folder: Path) -> str:
    """ "lab" for the lab's first graded set, "lab-round2" for tests/data/exercise2_lab_round2, and so on."""
    suffix = folder.name.removeprefix(DEFAULT_LAB_SET.name).strip("_-")
    return f"lab-{suffix}" if suffix else "lab"


def lab_parts(folder: Path) -> list[tuple[str, bool, list[LabAnswer]]]:
    """(label, tuned on, entries): the first set in its tuning half and its other half, every other set whole."""
    entries = sorted(load_lab_set(folder), key=lambda entry: entry.file)
    label = lab_label(folder)
    if folder.name == DEFAULT_LAB_SET.name:
        return [(f"{label}-tuning-half", True, entries[0::2]), (f"{label}-other-half", False, entries[1::2])]
    return [(label, folder.name in TUNING_SET_NAMES, entries)]


def measure_lab_set(folder: Path, method_name: str, lab_text: Path | None) -> list[str]:
    return [
        line
        for label, tuned, entries in lab_parts(folder)
        for line in measure_lab_entries(folder, entries, f"{'tuning' if tuned else 'never-tuned'} {label}",
                                        method_name, lab_text)
    ]  # fmt: skip


def measure_lab_entries(
    folder: Path, entries: list[LabAnswer], label: str, method_name: str, lab_text: Path | None
) -> list[str]:
    rubric = Exercise2Rubric.default()
    if lab_text is not None and lab_text.is_file():
        rubric = rubric.model_copy(update={"lab_text": lab_text})
    diffs, off_files, kind_misses, review, off, caught = [], [], [], 0, 0, 0
    grade_answers(folder / entries[0].file, rubric, method=method_name)  # loads the model: not a student's cost
    started = time.perf_counter()
    for entry in entries:
        result = grade_answers(folder / entry.file, rubric, method=method_name)
        machine = {q.number: q.points for q in result.questions}
        review += sum(q.needs_review for q in result.questions)
        flagged = {q.number for q in result.questions if q.needs_review or result.error}
        file_diff = 0.0
        for number, human in entry.points.items():
            got = machine.get(number, 0.0)
            missed = abs(got - human) >= 0.5 - 1e-9
            off, caught = off + missed, caught + (missed and (number in flagged or bool(result.error)))
            diffs.append(got - human)
            file_diff += got - human
            rule = LAB_KIND_LIMITS.get(entry.kind)
            if rule and ((rule[0] == "<=" and got > rule[1]) or (rule[0] == ">=" and got < rule[1])):
                kind_misses.append(f"{entry.file} Q{number} {entry.kind}: {got:g} (human {human:g})")
        if abs(file_diff) > 1:
            off_files.append(f"{entry.file} ({file_diff:+g})")
    per_student = (time.perf_counter() - started) / len(entries)
    d = np.abs(np.array(diffs))
    lines = [f"  {label}: {m}" for m in kind_misses]
    lines += [f"  {label}: file off by more than 1 point: {f}" for f in off_files]
    lines.append(
        f"{label} exact={np.mean(d < 1e-9):.1%} within0.25={np.mean(d <= 0.25 + 1e-9):.1%} mae={d.mean():.3f} "
        f"files_off_by_more_than_1={len(off_files)} kind_rule_misses={len(kind_misses)} "
        f"review={review} catching={caught}/{off} n={len(d)} files={len(entries)} seconds_per_student={per_student:.2f}"
    )
    return lines


@click.command(help=__doc__.splitlines()[0])
@click.option("--asag", type=click.Path(path_type=Path), default=Path(os.environ.get("ASAG") or DEFAULT_DIR))
@click.option("--lab", type=click.Path(path_type=Path), multiple=True, help="a graded answer set (folder); repeat")
@click.option("--lab-text", type=click.Path(path_type=Path), default=DEFAULT_LAB_TEXT, help="the handout")
@click.option("--method", default="auto")
@click.option("--fit", is_flag=True, help="learn the similarity calibration on answers.csv")
def main(asag: Path, lab: tuple[Path, ...], lab_text: Path, method: str, fit: bool) -> None:
    click.get_current_context().exit(measure(asag, list(lab) or DEFAULT_LAB_SETS, lab_text, method, fit))


def measure(asag: Path, lab: list[Path], lab_text: Path, method_name: str, fit: bool) -> int:
    name = resolve_method_name(method_name)
    print(f"method: {name}", flush=True)
    dev_path = asag / DEV_FILE
    has_asag = dev_path.is_file()
    started = time.perf_counter()
    dev = read_split(dev_path) if has_asag else None
    method = get_method(name, corpus=background_corpus(dev) if dev else ())
    if fit:
        if dev is None:
            print(f"no {DEV_FILE} in {asag}", file=sys.stderr)
            return 2
        features = feature_matrix(method, dev.answers, dev.references, dev.questions)
        print(f"features: intercept, {', '.join(FEATURES)}")
        print(f'    "{name}": {fit_calibration(features, dev.scores, dev.max_score)},')
        return 0

    summary = measure_asag(method, asag, started) if has_asag else []
    if not has_asag:
        print(f"no {DEV_FILE} in {asag}: short-answer sets skipped", file=sys.stderr)
    for folder in lab:
        if folder.is_dir():
            summary += measure_lab_set(folder, name, lab_text)
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    main()
