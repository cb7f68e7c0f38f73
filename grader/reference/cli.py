"""`grader reference train NAME` and `grader reference grade`: the baselines' own commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from grader.reference.recipes import RECIPES
from grader.report.text import literal


def cmd_train(args: argparse.Namespace) -> int:
    from grader.datasets import load_split
    from grader.reference.train import train

    report = train(
        RECIPES[args.name],
        args.reference_dir / args.name,
        load_split(args.train_data, part="train"),
        load_split(args.test_data),
    )
    print(f"{args.name}: {report['epochs_trained']} epochs in {report['wall_seconds']:.0f} s on {report['device']}")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from grader.pipeline import open_session
    from grader.reference.measure import measure_all
    from grader.rubric.config import load_rubric

    rubric = load_rubric(args.rubric)
    # Anchors may name the baselines being measured, so they are resolved afterwards, not when the session opens.
    with open_session(
        rubric, args.rubric, data=args.data, backend=args.sandbox, resolve_anchors=False, isolation=args.isolation
    ) as session:
        baselines = measure_all(args.reference_dir, session, args.names or sorted(RECIPES))
    table = Table(title=literal(f"Baselines on {rubric.split.name}"), title_justify="left")
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
    print(f"written {args.reference_dir / 'baselines.json'}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    reference = commands.add_parser("reference", help="train and measure the reference baselines")
    verbs = reference.add_subparsers(dest="reference_command", required=True, metavar="VERB")

    train = verbs.add_parser("train", help="train one baseline (resumes from its checkpoint)")
    train.add_argument("name", choices=sorted(RECIPES))
    train.add_argument("--train-data", type=Path, required=True, help="training split: CIFAR batches root or .npz")
    train.add_argument("--test-data", type=Path, required=True, help="split to report test accuracy on per epoch")
    train.add_argument("--reference-dir", type=Path, default=Path("reference"))
    train.set_defaults(handler=cmd_train)

    grade = verbs.add_parser("grade", help="grade the baselines like students and write reference/baselines.json")
    grade.add_argument("names", nargs="*", help=f"baselines to measure (default: {', '.join(sorted(RECIPES))})")
    grade.add_argument("--rubric", type=Path, default=Path("rubric.yaml"))
    grade.add_argument("--data", type=Path)
    grade.add_argument("--sandbox", choices=("auto", "local", "docker"))
    grade.add_argument("--isolation", choices=("sandbox", "process"), help="process: accept a plain process")
    grade.add_argument("--reference-dir", type=Path, default=Path("reference"))
    grade.set_defaults(handler=cmd_grade)
