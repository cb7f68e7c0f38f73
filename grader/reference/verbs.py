"""`grader reference train NAME` and `grader reference grade`: the baselines' own verbs."""

from __future__ import annotations

from pathlib import Path

from grader.reference.recipes import RECIPES
from grader.report.text import literal


def train_main(*, name: str, train_data: Path, test_data: Path, reference_dir: Path = Path("reference")) -> int:
    from grader.datasets import load_split
    from grader.reference.train import train

    report = train(
        RECIPES[name],
        reference_dir / name,
        load_split(train_data, part="train"),
        load_split(test_data),
    )
    print(f"{name}: {report['epochs_trained']} epochs in {report['wall_seconds']:.0f} s on {report['device']}")
    return 0


def grade_main(
    *,
    names: list[str] | None = None,
    rubric: Path = Path("rubric.yaml"),
    data: Path | None = None,
    sandbox: str | None = None,
    isolation: str | None = None,
    timeout: float | None = None,
    reference_dir: Path = Path("reference"),
) -> int:
    from rich.console import Console
    from rich.table import Table

    from grader.pipeline import open_session
    from grader.reference.measure import measure_all
    from grader.rubric.config import load_rubric

    settings = load_rubric(rubric)
    # Anchors may name the baselines being measured, so they are resolved afterwards, not when the session opens.
    with open_session(
        settings,
        rubric,
        data=data,
        backend=sandbox,
        timeout_seconds=timeout,
        resolve_anchors=False,
        isolation=isolation,
    ) as session:
        baselines = measure_all(reference_dir, session, names or sorted(RECIPES))
    table = Table(title=literal(f"Baselines on {settings.split.name}"), title_justify="left")
    for column in ("Baseline", "Accuracy", "Points", "Parameters", "MACs/image", "Note"):
        table.add_column(column)
    for baseline in baselines.baselines:
        if baseline.split_sha256 not in (None, session.split_sha256):
            continue
        accuracy = f"{baseline.accuracy:.2%}" if baseline.accuracy is not None else "untrained"
        points = f"{baseline.points:g}" if baseline.points is not None else "-"
        size = (f"{baseline.parameters:,}", f"{baseline.macs_per_image:,}")
        table.add_row(*map(literal, (baseline.name, accuracy, points, *size, baseline.note)))
    Console().print(table)
    print(f"written {reference_dir / 'baselines.json'}")
    return 0
