"""The `grader` command: a thin layer over the stages' functions."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

# numpy's OpenBLAS thread pool gains nothing on the answer scorer's short texts, and it is what the first
# round's hang was made of: one thread (set before numpy is first imported; torch's own pool is untouched).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from rich.console import Console

from grader import __version__
from grader.report.text import line, literal

console = Console(soft_wrap=True)
# Each verb family adds its own subcommands with register(subparsers); this file only dispatches.
VERB_MODULES: list[str] = ["grader.reference.cli", "grader.batch.cli", "grader.check.cli"]
error_console = Console(stderr=True, soft_wrap=True)


def _add_grading_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rubric", type=Path, default=Path("rubric.yaml"), help="rubric file (default rubric.yaml)")
    parser.add_argument("--data", type=Path, help="dataset root or split file (default: the rubric's split path)")
    parser.add_argument("--sandbox", choices=("auto", "local", "docker"), help="override the rubric's backend")
    parser.add_argument("--timeout", type=float, help="wall-clock seconds per submission (overrides the rubric)")
    parser.add_argument(
        "--isolation",
        choices=("sandbox", "process"),
        help="sandbox: run student code only in bubblewrap or Docker (the default); process: also accept a plain "
        "process, which is not a security boundary",
    )


def cmd_grade(args: argparse.Namespace) -> int:
    from grader.pipeline import CoursePolicy, apply_policy, grade_submission, open_session
    from grader.report.console import render_result
    from grader.results.store import save_result
    from grader.rubric.config import load_rubric

    if args.all:
        from grader.batch.cli import cmd_grade_all

        return cmd_grade_all(args)
    if not args.student:
        error_console.print("[red]error:[/red] name a student, or grade the whole class with --all")
        return 2
    rubric = load_rubric(args.rubric)
    folder = Path(args.student)
    if not folder.is_dir() or len(folder.parts) == 1:
        folder = args.submissions / args.student
    with (
        open_session(
            rubric,
            args.rubric,
            data=args.data,
            backend=args.sandbox,
            timeout_seconds=args.timeout,
            extra_hidden=[args.results.resolve(), args.submissions.resolve()],
            isolation=args.isolation,
        ) as session,
        console.status(literal(f"grading {folder.name} in the {session.backend.name} sandbox")),
    ):
        if session.isolation_warning:
            console.print(line((f"warning: {session.isolation_warning}", "yellow")))
        result = grade_submission(folder, session)
    result = apply_policy(result, folder, CoursePolicy.load(rubric, args.rubric, args.overrides))
    path = save_result(result, args.results)
    render_result(result, console)
    console.print(line(f"result written to {path}"))
    return 0 if result.status == "graded" else 1


def cmd_validate(args: argparse.Namespace) -> int:
    from grader.rubric.config import load_rubric

    rubric = load_rubric(args.rubric_file)
    anchors = ", ".join(f"{a.baseline or f'{a.accuracy:.0%}'}->{a.points:g}" for a in rubric.exercise1.anchors)
    split = f"split '{rubric.split.name}' ({rubric.split.format.value})"
    console.print(line((f"{args.rubric_file} is valid", "green"), f": {split}, exercise 1 anchors {anchors}"))
    return 0


def cmd_pin_split(args: argparse.Namespace) -> int:
    from grader.rubric.pin import pin_split

    section = pin_split(args.path, args.rubric, args.name)
    console.print(
        f"pinned {section['images']} images ({section['format']}) from {section['path']} into {args.rubric}: "
        f"sha256 {section['sha256']}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    from grader.batch.cli import add_grade_all_options

    parser = argparse.ArgumentParser(prog="grader", description="Grade the CIFAR-10 lab in a sandbox.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    grade = commands.add_parser("grade", help="grade one student's submission, or the class with --all")
    grade.add_argument("student", nargs="?", help="a username under --submissions, or a submission folder")
    _add_grading_options(grade)
    grade.add_argument("--submissions", type=Path, default=Path("submissions"))
    grade.add_argument("--results", type=Path, default=Path("results"))
    add_grade_all_options(grade)
    grade.set_defaults(handler=cmd_grade)

    validate = commands.add_parser("validate", help="check a rubric file without grading")
    validate.add_argument("rubric_file", type=Path, nargs="?", default=Path("rubric.yaml"))
    validate.set_defaults(handler=cmd_validate)

    pin = commands.add_parser("pin-split", help="pin a test split (npz, image folder, CIFAR batches) in the rubric")
    pin.add_argument("path", type=Path)
    pin.add_argument("--rubric", type=Path, default=Path("rubric.yaml"))
    pin.add_argument("--name", help="a label for the split (default: the file or folder name)")
    pin.set_defaults(handler=cmd_pin_split)

    for module in VERB_MODULES:
        importlib.import_module(module).register(commands)
    return parser


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the grader the way Ctrl-C does: every running sandbox is killed and finished work is kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(number, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    from grader.datasets import DatasetError
    from grader.policy.overrides import OverridesError
    from grader.rubric.config import RubricError
    from grader.sandbox.base import SandboxUnavailable

    args = build_parser().parse_args(argv)
    try:
        with terminate_as_interrupt():
            return args.handler(args)
    except (RubricError, DatasetError, SandboxUnavailable, OverridesError) as error:
        error_console.print(line(("error:", "red"), f" {error}"))
        return 2
    except KeyboardInterrupt:
        error_console.print("[red]interrupted[/red]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
