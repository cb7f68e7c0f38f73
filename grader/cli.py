"""The `grader` command: every option declared once here, each verb a keyword-only main() in its stage."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from rich.console import Console

from grader import __version__
from grader.errors import GraderError
from grader.report.text import line

# numpy's OpenBLAS thread pool gains nothing on the answer scorer's short texts, and it is what the first
# round's hang was made of: one thread (set before numpy is first imported; torch's own pool is untouched).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)
FilePath = click.Path(path_type=Path)
ExistingPath = click.Path(path_type=Path, exists=True)


def _options(*options: Callable) -> Callable:
    def apply(function: Callable) -> Callable:
        for option in reversed(options):
            function = option(function)
        return function

    return apply


rubric_option = click.option(
    "--rubric", type=FilePath, default=Path("rubric.yaml"), show_default=True, help="The rubric file."
)
# The students' check and pack take the sandbox options without --isolation: a student runs their own code, so
# the check may always fall back to a plain process (and says so).
sandbox_options = _options(
    rubric_option,
    click.option("--data", type=FilePath, help="Dataset root or split file (default: the rubric's split path)."),
    click.option(
        "--sandbox", type=click.Choice(["auto", "local", "docker"]), help="Override the rubric's sandbox backend."
    ),
    click.option("--timeout", type=float, help="Wall-clock seconds per submission (overrides the rubric)."),
)
grading_options = _options(
    sandbox_options,
    click.option(
        "--isolation",
        type=click.Choice(["sandbox", "process"]),
        help="sandbox: run student code only in bubblewrap or Docker (the default); process: also accept a plain "
        "process, which is not a security boundary.",
    ),
)
class_folders = _options(
    click.option("--submissions", type=FilePath, default=Path("submissions"), show_default=True,
                 help="One folder per student."),
    click.option("--results", type=FilePath, default=Path("results"), show_default=True,
                 help="Where results/<student>.json are written."),
)  # fmt: skip
overrides_option = click.option(
    "--overrides", type=FilePath, help="TA overrides (default: overrides.yaml beside the rubric)."
)
quick_option = click.option(
    "--quick", is_flag=True, help="Run on a fixed subset (the first 100 images of each class) instead of the split."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grader")
@click.option("-v", "--verbose", count=True, help="Log what the grader does (-vv: debug detail) on stderr.")
def cli(verbose: int) -> None:
    """Grade the CIFAR-10 lab in a sandbox."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    # The terminal's handler keeps its own level: a class run lowers the root's to INFO for its log file.
    terminal = logging.StreamHandler()
    terminal.setLevel(level)
    terminal.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[terminal], force=True)


@cli.command()
@click.argument("student", required=False)
@grading_options
@class_folders
@overrides_option
@click.option("--all", "all_students", is_flag=True, help="Grade every student under --submissions, in parallel.")
@click.option("--force", is_flag=True, help="With --all: regrade even unchanged submissions.")
@click.option(
    "--workers", type=click.IntRange(min=1), help="With --all: parallel sandboxes (default: rubric, GPUs or CPUs/2)."
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="With --all: where the sandboxes run: this machine's worker pool, or a Ray cluster (docs/CLUSTER.md).",
)
@click.option("--address", help="With --executor ray: the cluster's head, HOST:6379 (default: a local Ray cluster).")
def grade(
    student: str | None,
    all_students: bool,
    force: bool,
    workers: int | None,
    executor: str,
    address: str | None,
    **options,
) -> int:
    """Grade one student's submission (a username under --submissions, or a folder), or the class with --all."""
    if all_students:
        from grader.batch.run import main as grade_all

        if address and executor != "ray":
            raise click.UsageError("--address is the Ray cluster's head: use it with --executor ray")
        cluster = {"executor": executor, "address": address}
        return grade_all(**options, force=force, workers=workers, **cluster, console=console)
    if executor != "local" or address:
        raise click.UsageError("--executor and --address choose where a class run goes: use them with --all")
    if not student:
        raise click.UsageError("name a student, or grade the whole class with --all")
    from grader.grade_one import main as grade_one

    return grade_one(student=student, **options, console=console)


@cli.command()
@click.argument("rubric_file", type=FilePath, default=Path("rubric.yaml"))
def validate(rubric_file: Path) -> int:
    """Check a rubric file without grading."""
    from grader.rubric.config import load_rubric

    rubric = load_rubric(rubric_file)
    anchors = ", ".join(f"{a.baseline or f'{a.accuracy:.0%}'}->{a.points:g}" for a in rubric.exercise1.anchors)
    split = f"split '{rubric.split.name}' ({rubric.split.format.value})"
    questions = f"exercise 2: {len(rubric.exercise2.questions)} questions, {rubric.exercise2.max_points:g} points"
    console.print(line((f"{rubric_file} is valid", "green"), f": {split}, exercise 1 anchors {anchors}, {questions}"))
    return 0


@cli.command("pin-split")
@click.argument("path", type=ExistingPath)
@rubric_option
@click.option("--name", help="A label for the split (default: the file or folder name).")
@click.option("--train", is_flag=True, help="Pin the training split (integrity's generalisation gap) instead.")
@click.option(
    "--private", is_flag=True,
    help="Pin an instructor's private split instead (images no student has seen, e.g. CIFAR-10.1's .npy pair): "
    "its gap to the test split is the strongest memorisation check.",
)  # fmt: skip
def pin_split(path: Path, rubric: Path, name: str | None, train: bool, private: bool) -> int:
    """Pin a test split (npz, image folder, CIFAR batches, .npy pair) in the rubric: its format, path and sha256."""
    from grader.rubric.pin import pin_split as pin

    section = pin(path, rubric, name, train=train, private=private)
    console.print(
        line(
            f"pinned {section['images']} images ({section['format']}) from {section['path']} into {rubric}: "
            f"sha256 {section['sha256']}"
        )
    )
    return 0


@cli.command("import-bb")
@click.argument("zip", type=ExistingPath)
@click.option("--submissions", type=FilePath, default=Path("submissions"), show_default=True, help="Where to unpack.")
@click.option(
    "--rubric", type=FilePath, default=Path("rubric.yaml"), show_default=True, help="For attempts: and late:."
)
def import_bb(**options) -> int:
    """Unpack a Blackboard Assignment bulk download (gradebook_....zip, or the folder it was unzipped into)
    into submissions/<username>/."""
    from grader.batch.import_bb import main

    return main(**options, console=console)


@cli.command()
@click.option("--format", "format_name", default="bb", show_default=True, help="bb, bb-tab, canvas or full.")
@click.option(
    "--gradebook", type=ExistingPath,
    help="A downloaded gradebook to fill in: its students only; Username, the lab's column and feedback only.",
)  # fmt: skip
@click.option(
    "--roster", type=ExistingPath,
    help="Export only these students: usernames one a line, or a CSV with a Username column (default: the "
    "gradebook's students, else every submitter).",
)  # fmt: skip
@click.option("--all-columns", is_flag=True, help="With --gradebook: keep every column of the download.")
@class_folders
@click.option("--out", type=FilePath, default=Path("exports"), show_default=True, help="Where the files go.")
@rubric_option
@overrides_option
def export(**options) -> int:
    """Write the grades for the LMS into exports/."""
    from grader.batch.export import main

    return main(**options, console=console)


@cli.command()
@class_folders
def summary(results: Path, submissions: Path) -> int:
    """The class summary of the stored results: counts, distributions, errors by cause, duplicates."""
    from grader.batch.summary import main

    return main(results=results, submissions=submissions, console=console)


@cli.command()
@class_folders
@rubric_option
@overrides_option
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="The port on 127.0.0.1 (0: any free one).")  # fmt: skip
@click.option("--ta", help="Who decides (default: your user name); each browser can change it on the page.")
@click.option("--seed-from", type=click.Path(exists=True, file_okay=False, path_type=Path), multiple=True,
              help="The results folder of an earlier class graded on the same rubric questions: its TA decisions "
              "rescore this class's answers from the start (repeatable).")  # fmt: skip
def review(**options) -> int:
    """The TA's review in a local web app: answers grouped by meaning, the likeliest machine mistakes first;
    each decision is stored per answer (results/review.sqlite) and applied to the results and exports."""
    from grader.review.server import main

    return main(**options, console=console)


report_options = _options(
    click.option("--results", type=FilePath, default=Path("results"), show_default=True, help="The stored results."),
    rubric_option,
    click.option("--output", type=FilePath, help="Where the HTML pages go (default: <results>/report)."),
)


@cli.command()
@report_options
@click.option("--exports", type=FilePath, default=Path("exports"), show_default=True,
              help="What `grader export` wrote, listed on the class page.")  # fmt: skip
def report(**options) -> int:
    """Write the HTML pages from the stored results (runs no model): <output>/index.html and students/<name>.html."""
    from grader.report.verbs import report_main

    return report_main(**options, console=console)


@cli.command()
@click.argument("student")
@report_options
@click.option(
    "--open", "open_page", is_flag=True, help="Also open the student's page (built if missing or out of date)."
)
def show(student: str, **options) -> int:
    """Print one student's stored result; --open shows the HTML page in a browser."""
    from grader.report.verbs import show_main

    return show_main(student=student, **options, console=console)


@cli.command()
@click.argument("submission", type=ExistingPath)
@sandbox_options
@quick_option
def check(submission: Path, **options) -> int:
    """Check your submission folder the way the grader will run it (students)."""
    from grader.check.verbs import check_main

    return check_main(submission=submission, **options, console=console)


@cli.command()
@click.argument("submission", type=ExistingPath)
@sandbox_options
@quick_option
@click.option("--output", "-o", type=FilePath, help="The zip to write (default: <folder name>.zip here).")
def pack(submission: Path, **options) -> int:
    """Check, then build the zip to upload to Blackboard (students)."""
    from grader.check.verbs import pack_main

    return pack_main(submission=submission, **options, console=console)


@cli.group()
def reference() -> None:
    """Train and measure the reference baselines."""


def _recipe_names() -> list[str]:
    from grader.reference.recipes import RECIPES

    return sorted(RECIPES)


@reference.command("train")
@click.argument("name")
@click.option("--train-data", type=ExistingPath, required=True, help="Training split: CIFAR batches root or .npz.")
@click.option("--test-data", type=ExistingPath, required=True, help="Split to report test accuracy on per epoch.")
@click.option("--reference-dir", type=FilePath, default=Path("reference"), show_default=True, help="Baselines' home.")
def reference_train(name: str, **options) -> int:
    """Train one baseline (resumes from its checkpoint)."""
    from grader.reference.verbs import train_main

    if name not in _recipe_names():
        raise click.BadParameter(f"choose from {', '.join(_recipe_names())}", param_hint="NAME")
    return train_main(name=name, **options)


@reference.command("grade")
@click.argument("names", nargs=-1)
@grading_options
@click.option("--reference-dir", type=FilePath, default=Path("reference"), show_default=True, help="Baselines' home.")
def reference_grade(names: tuple[str, ...], **options) -> int:
    """Grade the baselines like students and write reference/baselines.json."""
    from grader.reference.verbs import grade_main

    return grade_main(names=list(names), **options)


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
    """The one place that turns outcomes into exit codes: a verb's own code, a GraderError's, 2 for usage, 130."""
    try:
        with terminate_as_interrupt():
            return cli.main(args=argv, prog_name="grader", standalone_mode=False) or 0
    except GraderError as error:
        error_console.print(line(("error:", "red"), f" {error}"))
        return error.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except (KeyboardInterrupt, click.Abort):
        error_console.print(line(("interrupted", "red")))
        return 130


def run() -> None:
    """The `grader` command: main(), then an exit that no abandoned thread can turn into a crash.

    A daemon thread left behind (an item scored past its deadline, the answer model loading at Ctrl-C)
    may be inside torch's C++ code, and the interpreter's shutdown would then abort the process
    ("terminate called without an active exception") instead of exiting with the code. With such a
    thread alive the grader does its own cleanup and leaves without that shutdown.
    """
    code = main()
    if not any(thread.daemon and thread.is_alive() for thread in threading.enumerate()):
        sys.exit(code)
    if "grader.sandbox.docker_cleanup" in sys.modules:
        sys.modules["grader.sandbox.docker_cleanup"].remove_live_containers()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
