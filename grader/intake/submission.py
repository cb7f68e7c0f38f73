"""A student's submission folder read by the contract (contract.py, docs/SUBMITTING.md): the files to grade."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from grader.intake.blackboard.manifest import MANIFEST, read_manifest
from grader.intake.contract import choose_files, file_sha256

MAX_WEIGHTS_BYTES = 1 << 30
MAX_SOURCE_BYTES = 1 << 20
MAX_HASHED_FILES = 200
HINTS = {
    "weights": "save torch.save(model.state_dict(), 'weights.pth')",
    "model": "model.py must define build_model() or a class Net",
}


class IntakeError(ValueError):
    """The submission cannot be graded as it stands; the message names the file and the fix."""


class SubmissionFiles(BaseModel):
    student: str
    folder: Path
    model_file: str | None = Field(description="None when the weights are a TorchScript archive")
    weights_file: str
    answers_file: str | None
    notes: list[str] = Field(
        default_factory=list, description="how the files were recognised, e.g. 'model file named Net.py; ...'"
    )

    def roles(self) -> dict[str, str | None]:
        return {"model": self.model_file, "weights": self.weights_file, "answers": self.answers_file}


def find_submission_files(folder: Path, student: str | None = None) -> SubmissionFiles:
    folder = Path(folder)
    student = student or folder.name
    if not folder.is_dir():
        raise IntakeError(f"{folder}: no submission folder for '{student}'")
    choices = choose_files(folder)
    for role, hint in HINTS.items():
        if choices[role].problem():
            raise IntakeError(f"{folder}: {choices[role].problem()}; {hint}")
    model, weights = choices["model"].chosen, choices["weights"].chosen
    if (folder / weights).stat().st_size > MAX_WEIGHTS_BYTES:
        raise IntakeError(f"{folder / weights}: {(folder / weights).stat().st_size >> 20} MB is over the 1024 MB limit")
    if model and (folder / model).stat().st_size > MAX_SOURCE_BYTES:
        raise IntakeError(f"{folder / model}: larger than 1 MB; is it really source code?")
    imported = _import_notes(folder)
    return SubmissionFiles(
        student=student,
        folder=folder,
        model_file=model,
        weights_file=weights,
        answers_file=choices["answers"].chosen,
        notes=imported if imported is not None else [note for choice in choices.values() for note in choice.notes()],
    )


def _import_notes(folder: Path) -> list[str] | None:
    """How the Blackboard import recognised this upload (it chose the files now at their contract names)."""
    if not (folder / MANIFEST).is_file():
        return None
    try:
        return read_manifest(folder).notes
    except (OSError, ValueError):
        return None


def submission_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every regular file, by path relative to the folder. Links are not followed."""
    hashes = {}
    for path in sorted(Path(folder).rglob("*")):
        if len(hashes) >= MAX_HASHED_FILES:
            break
        if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts:
            hashes[path.relative_to(folder).as_posix()] = file_sha256(path)
    return hashes
