"""`make bench-report`: what `grader report` costs for a class, on a real split.

Writes N made-up results (accuracies spread from 30 % to 90 %, predictions drawn against the split's labels,
so every page has a full confusion matrix and a strip of real test images) into build/bench-report/, then:
1. builds every page once (`grader report`'s own build) and prints the wall and CPU seconds per student page,
   with the workers the build chose;
2. builds again with nothing changed (every page is kept by its key);
3. changes one result and builds again (one page drawn);
and prints the page sizes. Runs no model.
"""

from __future__ import annotations

import hashlib
import resource
import shutil
import time
from pathlib import Path

import click
import numpy as np
import yaml

from grader.datasets import load_split
from grader.report.html.build import build_reports, report_workers
from grader.results.model import BaselineComparison, InputHashes, Points, Result
from grader.results.store import save_result
from grader.rubric.points import ItemPoints

FOLDER = Path("build/bench-report")


def cpu_seconds() -> float:
    """This process and its finished workers, user and system."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def made_up_result(student: str, labels: np.ndarray, split_sha256: str, rng: np.random.Generator) -> Result:
    target = rng.uniform(0.3, 0.9)
    predicted = np.where(rng.random(len(labels)) < target, labels, rng.integers(0, 10, len(labels)))
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (labels, predicted), 1)
    accuracy = float((predicted == labels).mean())
    points = round(accuracy * 100, 2)
    return Result(
        student=student, status="graded", accuracy=accuracy,
        per_class_accuracy=(matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)).tolist(),
        confusion_matrix=matrix.tolist(), predictions="".join(map(str, predicted)),
        points=Points(total=points, exercise1=points), final_points=Points(total=points, exercise1=points),
        items=[ItemPoints(item="exercise1", points=points, max_points=100, reason=f"accuracy {accuracy:.2%}")],
        comparison=[BaselineComparison(baseline="lenet5", accuracy=0.62, difference=accuracy - 0.62,
                                       beats=accuracy > 0.62)],
        inputs=InputHashes(grader_version="bench", split=split_sha256),
    )  # fmt: skip


def timed_build(label: str, results: Path, rubric: Path, students: int) -> None:
    start, cpu = time.perf_counter(), cpu_seconds()
    written = build_reports(results=results, rubric=rubric, output=FOLDER / "report", exports=None)
    wall, used = time.perf_counter() - start, cpu_seconds() - cpu
    per_page = f", {wall / written.drawn:.2f} s wall and {used / written.drawn:.2f} s CPU per page drawn" if (
        written.drawn) else ""  # fmt: skip
    print(f"{label}: {students} students, {written.drawn} pages drawn in {wall:.1f} s wall, {used:.1f} s CPU{per_page}")
    if written.split.problem:
        print(f"  no test images: {written.split.problem}")


@click.command(help=__doc__.splitlines()[0])
@click.option("--data", type=click.Path(path_type=Path), required=True, help="The test split as an .npz.")
@click.option("--students", type=click.IntRange(min=1), default=200)
def main(data: Path, students: int) -> None:
    shutil.rmtree(FOLDER, ignore_errors=True)
    split = load_split(data)
    sha256 = split.content_sha256()
    rubric = FOLDER / "rubric.yaml"
    rubric.parent.mkdir(parents=True)
    pin = {"name": data.stem, "format": "npz", "path": str(data.resolve()), "sha256": sha256}
    anchors = [{"accuracy": 0.1, "points": 0}, {"accuracy": 0.9, "points": 100}]
    rubric.write_text(
        yaml.safe_dump({"course": "Lab 8", "split": pin, "exercise1": {"points": 100, "anchors": anchors}})
    )
    rng = np.random.default_rng(int(hashlib.sha256(b"bench-report").hexdigest()[:8], 16))
    results = FOLDER / "results"
    for index in range(students):
        save_result(made_up_result(f"student{index:04d}", split.labels, sha256, rng), results)
    print(f"{students} results on {data.name} ({len(split)} images); "
          f"workers for a first build: {report_workers(students)}")  # fmt: skip
    timed_build("first build", results, rubric, students)
    timed_build("nothing changed", results, rubric, students)
    changed = made_up_result("student0000", split.labels, sha256, rng)
    save_result(changed, results)
    timed_build("one result changed", results, rubric, students)
    sizes = [page.stat().st_size / 1024 for page in (FOLDER / "report" / "students").glob("*.html")]
    index_size = (FOLDER / "report" / "index.html").stat().st_size / 1024
    print(f"student page {np.mean(sizes):.0f} KiB on average (max {max(sizes):.0f}), class page {index_size:.0f} KiB")


if __name__ == "__main__":
    main()
