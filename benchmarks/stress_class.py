"""`make stress-class`: grade the same class again and again, and count the runs that stall.

A class of students (the example's LeNet-5 and answers, each copy made distinct) is graded with
`grader grade --all --force` in a fresh process per run, with two workers, so that the Exercise 2
embedding model and its BLAS threads run beside sandboxes starting. A run that has not finished
after `--stall-seconds` is a stall: the script then interrupts it (which must also work) and goes
on. A run that exits with an error, or leaves fewer results than students, is a failure. Prints one
line per run and, last, `stalls <n> of <runs>` and `failures <n> of <runs>`; exits 1 on either.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]  # the grader graded is the one beside this folder
EXAMPLE = REPO / "submissions" / "example"


def make_class(root: Path, students: int) -> Path:
    from grader.intake.class_folders import SAMPLE_MARKER  # the copies are students, not the shipped sample

    submissions = root / "submissions"
    for number in range(students):
        folder = submissions / f"student{number:03d}"
        shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("train.py", SAMPLE_MARKER))
        with open(folder / "model.py", "a") as stream:
            stream.write(f"\n# copy {number}\n")  # distinct inputs: nothing is skipped as unchanged
    return submissions


def make_rubric(root: Path, images: int) -> Path:
    """A small split in the official format, pinned into a copy of the project's rubric."""
    rng = np.random.default_rng(0)
    split = root / "split.npz"
    np.savez(split, images=rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8), labels=np.arange(images) % 10)
    rubric = root / "rubric.yaml"
    shutil.copyfile(REPO / "rubric.yaml", rubric)
    subprocess.run([sys.executable, "-m", "grader", "pin-split", str(split), "--rubric", str(rubric)], check=True)
    return rubric


def grade_class(root: Path, rubric: Path, sandbox: str, stall_seconds: float) -> tuple[bool, float, int]:
    """(stalled, seconds, exit code) of one `grade --all --force` run."""
    command = [sys.executable, "-m", "grader", "grade", "--all", "--force", "--workers", "2", "--rubric", str(rubric)]
    command += ["--submissions", str(root / "submissions"), "--results", str(root / "results"), "--sandbox", sandbox]
    if sandbox == "local" and not shutil.which("bwrap"):
        command += ["--isolation", "process"]
    shutil.rmtree(root / "results", ignore_errors=True)
    started = time.monotonic()
    with open(root / "run.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            code = process.wait(timeout=stall_seconds)
            return False, time.monotonic() - started, code
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                code = process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            return True, time.monotonic() - started, code


@click.command(help=__doc__.splitlines()[0])
@click.option("--runs", type=click.IntRange(min=1), default=10)
@click.option("--students", type=click.IntRange(min=1), default=20)
@click.option("--images", type=click.IntRange(min=1), default=500, help="test images per student")
@click.option("--sandbox", type=click.Choice(["local", "docker"]), default="local")
@click.option("--stall-seconds", type=float, default=600, help="a run taking longer has stalled")
def main(runs: int, students: int, images: int, sandbox: str, stall_seconds: float) -> None:
    stalls = failures = 0
    with tempfile.TemporaryDirectory(prefix="stress-class-") as folder:
        root = Path(folder)
        make_class(root, students)
        rubric = make_rubric(root, images)
        for run in range(1, runs + 1):
            stalled, seconds, code = grade_class(root, rubric, sandbox, stall_seconds)
            graded = len(list((root / "results").glob("*.json")))
            failed = not stalled and (code != 0 or graded < students)
            stalls, failures = stalls + stalled, failures + failed
            state = "STALLED" if stalled else f"exit {code}"
            print(f"run {run}: {state}, {graded} results, {seconds:.1f} s", flush=True)
            if failed:
                print((root / "run.log").read_text(errors="replace")[-2000:], file=sys.stderr)
    print(f"stalls {stalls} of {runs}")
    print(f"failures {failures} of {runs}")
    if stalls or failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
