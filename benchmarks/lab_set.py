"""The lab's graded answer set: student answer files for Exercise 2 with a careful human's points.

The set lives in tests/data/exercise2_lab/ (files plus graded.yaml). The answer checker's
benchmark compares its points with these; the tests keep the set complete and well formed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from grader.errors import GraderError

MANIFEST_NAME = "graded.yaml"
# Files in the set's folder that are not student answers.
NOT_ANSWERS = frozenset({MANIFEST_NAME, "README.md", "make_documents.py"})
SOURCES_DIR = "sources"
QUESTIONS = (1, 2, 3, 4)
POINTS_STEP = 0.25

# What the answers are like, as the set's README names its kinds ("good", "paraphrase", "confident-wrong", ...):
# a word of lower-case letters and hyphens, free for any new set.
Kind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z-]{0,40}$")]


class LabSetError(GraderError):
    """The graded answer set is incomplete or malformed; the message names the file and the problem."""


class LabAnswer(BaseModel):
    """One student's answers file and the points a careful human gives each question."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(description="File name inside the set's folder, e.g. 'good_01.md'.")
    kind: Kind = Field(description="What the answers are like; a .docx/.pdf carries the kind of its content.")
    points: dict[int, float] = Field(description="Question number -> points, 0 to 1 in steps of 0.25.")
    why: dict[int, str] = Field(description="Question number -> the grader's short reason.")
    path: Path = Field(Path(), exclude=True, description="Filled in by load_lab_set: the file's full path.")

    @field_validator("file")
    @classmethod
    def _plain_file_name(cls, name: str) -> str:
        if not name or Path(name).name != name or name.startswith("."):
            raise ValueError(f"{name!r} must be a plain file name inside the folder")
        return name

    @field_validator("points")
    @classmethod
    def _points_per_question(cls, points: dict[int, float]) -> dict[int, float]:
        if set(points) != set(QUESTIONS):
            raise ValueError(f"points must be given for questions {list(QUESTIONS)}, got {sorted(points)}")
        for number, value in points.items():
            steps = value / POINTS_STEP
            if not 0 <= value <= 1 or abs(steps - round(steps)) > 1e-9:
                raise ValueError(f"question {number}: {value} is not between 0 and 1 in steps of {POINTS_STEP}")
        return points

    @field_validator("why")
    @classmethod
    def _reason_per_question(cls, why: dict[int, str]) -> dict[int, str]:
        if set(why) != set(QUESTIONS):
            raise ValueError(f"a reason must be given for questions {list(QUESTIONS)}, got {sorted(why)}")
        blank = [number for number, text in why.items() if not text.strip()]
        if blank:
            raise ValueError(f"empty reason for questions {blank}")
        return why

    @property
    def total(self) -> float:
        return sum(self.points.values())


def _answer_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_file() and p.name not in NOT_ANSWERS}


def _parse_entries(manifest: Path) -> list[LabAnswer]:
    try:
        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabSetError(f"{manifest}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise LabSetError(f"{manifest}: not valid YAML ({exc})") from None
    entries = data.get("answers") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise LabSetError(f"{manifest}: expected a top-level 'answers:' list")
    answers = []
    for index, entry in enumerate(entries):
        name = entry.get("file", f"entry {index + 1}") if isinstance(entry, dict) else f"entry {index + 1}"
        try:
            answers.append(LabAnswer.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
            raise LabSetError(f"{manifest}: {name}: {problems}") from None
    return answers


def load_lab_set(folder: Path) -> list[LabAnswer]:
    """The set's entries in manifest order, each with its path; every answers file listed exactly once."""
    folder = Path(folder)
    manifest = folder / MANIFEST_NAME
    answers = _parse_entries(manifest)
    listed = [a.file for a in answers]
    repeated = sorted({name for name in listed if listed.count(name) > 1})
    if repeated:
        raise LabSetError(f"{manifest}: files listed more than once: {', '.join(repeated)}")
    missing = [name for name in listed if not (folder / name).is_file()]
    if missing:
        raise LabSetError(f"{manifest}: listed files not found in {folder}: {', '.join(missing)}")
    unlisted = sorted(_answer_files(folder) - set(listed))
    if unlisted:
        raise LabSetError(f"{manifest}: files in {folder} without grades: {', '.join(unlisted)}")
    return [a.model_copy(update={"path": folder / a.file}) for a in answers]
