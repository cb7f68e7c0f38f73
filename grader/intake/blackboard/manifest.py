"""What an import records: submissions/<username>/manifest.json per student, and the report of the whole run."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from grader.atomic_write import write_atomic

MANIFEST = "manifest.json"


class ManifestFile(BaseModel):
    original: str = Field(description="the name the student gave it; inside an uploaded zip: zip name/inner path")
    stored: str = Field(description="path relative to the student's folder")
    role: str | None = Field(default=None, description="model, weights or answers when chosen for that role")
    attempt: str | None = Field(default=None, description="the earlier attempt it comes from; None: the graded attempt")


class Manifest(BaseModel):
    """submissions/<username>/manifest.json."""

    username: str
    display_name: str
    assignment: str | None = None
    submitted_at: datetime | None = Field(default=None, description="ISO 8601, with offset when the zone is known")
    submitted_raw: str | None = None
    attempt: str | None = Field(default=None, description="the graded attempt's stamp; None when the import failed")
    attempts_seen: list[str]
    attempt_policy: str
    receipt: str | None = None
    current_grade: str | None = None
    override_grade: str | None = None
    files: list[ManifestFile] = Field(default_factory=list)
    roles: dict[str, str] = Field(default_factory=dict, description="role -> contract name, e.g. weights -> weights.pt")
    missing: list[str] = Field(default_factory=list)
    ambiguous: dict[str, list[str]] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list, description="how the chosen files were recognised")
    problems: list[str] = Field(default_factory=list)
    error: str | None = Field(
        default=None, description="why this student's import failed; then the folder holds nothing but this file"
    )


class StudentImport(BaseModel):
    username: str
    display_name: str = ""
    status: Literal["imported", "skipped", "error"]
    attempt: str | None = None
    submitted_at: datetime | None = None
    files: dict[str, str] = Field(default_factory=dict, description="role -> contract name in the student's folder")
    missing: list[str] = Field(default_factory=list)
    ambiguous: dict[str, list[str]] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list, description="files taken from an earlier attempt or the text field")
    problems: list[str] = Field(default_factory=list)


class ImportReport(BaseModel):
    source: str
    students: list[StudentImport] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="problems that belong to no student")

    def count(self, status: str) -> int:
        return sum(student.status == status for student in self.students)

    def lines(self) -> list[str]:
        """One line per problem or adopted file, each naming its student, for the CLI to print."""
        found = [
            f"{student.username}: {line}" for student in self.students for line in student.problems + student.notes
        ]
        return found + self.notes


def read_manifest(student_dir: Path) -> Manifest:
    return Manifest.model_validate_json((Path(student_dir) / MANIFEST).read_text(encoding="utf-8"))


def write_manifest(student_dir: Path, manifest: Manifest) -> None:
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    write_atomic(Path(student_dir) / MANIFEST, text)
