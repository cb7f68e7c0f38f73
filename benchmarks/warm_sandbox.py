"""`make bench-warm`: cold against warm local sandboxes, on copies of the example graded as a class.

The same `grader grade --all` (one worker, local backend) runs twice over N copies of the example's model and
weights: with GRADER_WARM_SANDBOX=0 and =1. For each it prints the class's wall time per submission and the
sandbox's overhead per submission: the sandbox's wall time less the model's own load and inference, that is
the sandbox, the interpreter start and `import torch` (median over the class; the warm class's first
submission also starts its zygote, which the per-submission wall time includes). It ends with
`overhead <cold> -> <warm> s per submission`.

Another script can call `measure(...)` and `lines(...)` and print the lines with its own.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

MODES = {"cold": "0", "warm": "1"}


def measure(*, data: Path, submission: Path, copies: int = 5, rubric: Path = Path("rubric.yaml")) -> dict:
    """{mode: {"per_submission_s", "overhead_s", "first_overhead_s", "isolation"}} for cold and warm."""
    from grader.results.model import Result
    from grader.rubric.pin import pin_split

    figures = {}
    with tempfile.TemporaryDirectory(prefix="grader-warm-bench-") as folder:
        pinned = Path(folder) / "rubric.yaml"
        pinned.write_text(rubric.read_text())
        pin_split(data, pinned, "bench")
        students = Path(folder) / "class"
        for number in range(copies):
            student = students / f"student-{number:02d}"
            student.mkdir(parents=True)
            for name in ("model.py", "weights.pth"):
                shutil.copy(submission / name, student / name)
        for mode, switch in MODES.items():
            results = Path(folder) / f"results-{mode}"
            command = [sys.executable, "-m", "grader", "grade", "--all", "--force", "--workers", "1",
                       "--sandbox", "local", "--rubric", str(pinned), "--data", str(data),
                       "--submissions", str(students), "--results", str(results)]  # fmt: skip
            started = time.perf_counter()
            completed = subprocess.run(
                command, capture_output=True, text=True, env={**os.environ, "GRADER_WARM_SANDBOX": switch}
            )
            seconds = time.perf_counter() - started
            graded = [Result.model_validate_json(path.read_text()) for path in sorted(results.glob("student-*.json"))]
            if completed.returncode != 0 or len(graded) != copies or any(r.status != "graded" for r in graded):
                raise SystemExit(f"bench-warm: the {mode} class did not grade:\n{completed.stderr[-3000:]}")
            overheads = [_overhead(result) for result in graded]
            figures[mode] = {
                "per_submission_s": seconds / copies,
                "overhead_s": statistics.median(overheads),
                "first_overhead_s": max(overheads),
                "isolation": graded[0].run.isolation if graded[0].run else "",
            }
    return figures


def _overhead(result) -> float:
    timings = result.timings
    return (timings.sandbox_seconds or 0) - (timings.load_seconds or 0) - (timings.inference_seconds or 0)


def lines(figures: dict, copies: int) -> list[str]:
    out = []
    for mode, figure in figures.items():
        out.append(
            f"{mode:>5} ({figure['isolation']}): {figure['per_submission_s']:.2f} s per submission over a class of "
            f"{copies}, sandbox overhead {figure['overhead_s']:.2f} s "
            f"(median; largest {figure['first_overhead_s']:.2f} s)"
        )
    out.append(f"overhead {figures['cold']['overhead_s']:.2f} -> {figures['warm']['overhead_s']:.2f} s per submission")
    return out


@click.command(help=__doc__.splitlines()[0])
@click.option("--data", type=click.Path(path_type=Path), default=Path(os.environ.get("CIFAR10_ROOT", "data")))
@click.option("--submission", type=click.Path(path_type=Path), default=Path("submissions/example"))
@click.option("--copies", type=click.IntRange(min=1), default=5)
def main(data: Path, submission: Path, copies: int) -> None:
    for line in lines(measure(data=data, submission=submission, copies=copies), copies):
        print(line)


if __name__ == "__main__":
    main()
