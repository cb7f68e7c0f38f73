"""Measure the Exercise 2 checker against human graders on a public short-answer data set.

    python -m grader.answers.bench [--asag DIR] [--method auto|minilm|tfidf] [--fit]

DIR (default ../shared/data/asag from the repo root; env ASAG overrides) holds answers.csv
(development) and heldout.csv (measure only), columns question_id, question, reference_answer,
student_answer, score (0-5). Each answer is scored from its question's reference answer alone
by the same semantic scorer that grades Exercise 2. --fit learns the global calibration on
answers.csv only and prints it for calibration.py; it never reads heldout.csv.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .semantic import FEATURES, feature_matrix, score_features
from .similarity import get_method, resolve_method_name

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO_ROOT.parent / "shared" / "data" / "asag"
DEV_FILE, HELDOUT_FILE = "answers.csv", "heldout.csv"
MAX_SCORE = 5.0


@dataclass
class Split:
    question_ids: list[str]
    questions: list[str]
    references: list[str]
    answers: list[str]
    scores: np.ndarray


def read_split(path: Path) -> Split:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return Split(
        [r["question_id"] for r in rows],
        [r["question"] for r in rows],
        [r["reference_answer"] for r in rows],
        [r["student_answer"] or "" for r in rows],
        np.array([float(r["score"]) for r in rows]),
    )


def background_corpus(split: Split) -> list[str]:
    return list(dict.fromkeys([*split.references, *split.questions, *split.answers]))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def fit_calibration(features: np.ndarray, scores: np.ndarray) -> tuple[float, ...]:
    design = np.c_[np.ones(len(features)), features]
    weights, *_ = np.linalg.lstsq(design, scores / MAX_SCORE, rcond=None)
    return tuple(round(float(w), 4) for w in weights)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.answers.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--asag", type=Path, default=Path(os.environ.get("ASAG") or DEFAULT_DIR))
    parser.add_argument("--method", default="auto")
    parser.add_argument("--fit", action="store_true", help="learn the calibration on answers.csv and print it")
    args = parser.parse_args(argv)

    dev_path = args.asag / DEV_FILE
    if not dev_path.is_file():
        print(f"no {DEV_FILE} in {args.asag}", file=sys.stderr)
        return 2
    name = resolve_method_name(args.method)
    print(f"method: {name}", flush=True)
    dev = read_split(dev_path)
    started = time.perf_counter()
    method = get_method(name, corpus=background_corpus(dev))

    if args.fit:
        coefficients = fit_calibration(feature_matrix(method, dev.answers, dev.references, dev.questions), dev.scores)
        print(f"features: intercept, {', '.join(FEATURES)}")
        print(f'    "{name}": {coefficients},')
        return 0

    summary = []
    for file_name in (HELDOUT_FILE, DEV_FILE):
        path = args.asag / file_name
        if not path.is_file():
            print(f"asag {file_name} missing", file=sys.stderr)
            continue
        split = read_split(path)
        features = feature_matrix(method, split.answers, split.references, split.questions)
        predicted = MAX_SCORE * score_features(name, features, split.answers)[0]
        r = pearson(predicted, split.scores)
        rmse = float(np.sqrt(np.mean((predicted - split.scores) ** 2)))
        role = "held-out" if file_name == HELDOUT_FILE else "development"
        print(
            f"{role} ({file_name}): Pearson r {r:.3f}, RMSE {rmse:.3f} on {len(split.answers)} answers, "
            f"{len(set(split.question_ids))} questions ({time.perf_counter() - started:.0f}s so far)",
            flush=True,
        )
        summary.append(f"asag {file_name} r={r:.3f} rmse={rmse:.3f} n={len(split.answers)}")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
