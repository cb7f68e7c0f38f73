"""Finding the Exercise 2 answers file in a student's submission folder, by the submission contract."""

from __future__ import annotations

from pathlib import Path

# The module, not its names: grader.intake.contract itself imports grader.answers.parse.
from grader.intake import contract


def find_answers_file(folder: Path) -> Path | None:
    """The answers file the contract chooses under `folder` (searched a few levels deep), or None."""
    chosen = contract.choose_files(Path(folder))["answers"].chosen
    return Path(folder) / chosen if chosen else None
