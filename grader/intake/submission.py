"""A student's submission folder checked against the contract in docs/SUBMITTING.md."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from pydantic import BaseModel, Field

from grader.answers import find_answers_file

MODEL_NAME = "model.py"
WEIGHTS_NAMES = ("weights.pth", "weights.pt", "weights.safetensors")
WEIGHTS_SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt", ".bin", ".tar")
MAX_WEIGHTS_BYTES = 1 << 30
MAX_SOURCE_BYTES = 1 << 20
MAX_HASHED_FILES = 200


class IntakeError(ValueError):
    """The submission cannot be graded as it stands; the message names the file and the fix."""


class SubmissionFiles(BaseModel):
    student: str
    folder: Path
    model_file: str | None = Field(description="None when the weights are a TorchScript archive")
    weights_file: str
    answers_file: str | None
    notes: list[str] = Field(default_factory=list)

    def roles(self) -> dict[str, str | None]:
        return {"model": self.model_file, "weights": self.weights_file, "answers": self.answers_file}


def is_torchscript_archive(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _pick_weights(folder: Path) -> tuple[str, list[str]]:
    for name in WEIGHTS_NAMES:
        if (folder / name).is_file():
            return name, []
    candidates = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in WEIGHTS_SUFFIXES)
    if len(candidates) == 1:
        return candidates[0], [f"weights file named {candidates[0]}; the contract name is weights.pth"]
    if not candidates:
        raise IntakeError(f"{folder}: no weights file; save torch.save(model.state_dict(), 'weights.pth')")
    raise IntakeError(f"{folder}: several possible weights files {candidates}; keep one, named weights.pth")


def _pick_answers(folder: Path) -> str | None:
    found = find_answers_file(folder)
    return found.relative_to(folder).as_posix() if found else None


def find_submission_files(folder: Path, student: str | None = None) -> SubmissionFiles:
    folder = Path(folder)
    student = student or folder.name
    if not folder.is_dir():
        raise IntakeError(f"{folder}: no submission folder for '{student}'")
    weights, notes = _pick_weights(folder)
    weights_path = folder / weights
    if weights_path.stat().st_size > MAX_WEIGHTS_BYTES:
        raise IntakeError(f"{weights_path}: {weights_path.stat().st_size >> 20} MB is over the 1024 MB limit")
    model: str | None = MODEL_NAME if (folder / MODEL_NAME).is_file() else None
    if model is None and not is_torchscript_archive(weights_path):
        python_files = sorted(p.name for p in folder.glob("*.py"))
        if len(python_files) != 1:
            raise IntakeError(
                f"{folder}: no model.py (found {python_files or 'no .py files'}); model.py must define "
                "build_model() or a class Net"
            )
        model = python_files[0]
        notes.append(f"model file named {model}; the contract name is model.py")
    if model and (folder / model).stat().st_size > MAX_SOURCE_BYTES:
        raise IntakeError(f"{folder / model}: larger than 1 MB; is it really source code?")
    return SubmissionFiles(
        student=student,
        folder=folder,
        model_file=model,
        weights_file=weights,
        answers_file=_pick_answers(folder),
        notes=notes,
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def submission_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every regular file, by path relative to the folder. Links are not followed."""
    hashes = {}
    for path in sorted(Path(folder).rglob("*")):
        if len(hashes) >= MAX_HASHED_FILES:
            break
        if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts:
            hashes[path.relative_to(folder).as_posix()] = file_sha256(path)
    return hashes
