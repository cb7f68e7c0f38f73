"""Which of a Blackboard upload's files is the model, the weights, the answers (by the rules of contract.py),
and putting each at its contract name (model.py, weights.<ext>, answers.<ext>) in the student's folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import BaseModel, Field

from grader.intake.contract import choose_files


class Recognition(BaseModel):
    """One file per role (paths relative to the student's folder), with what is missing or ambiguous."""

    chosen: dict[str, str] = Field(default_factory=dict, description="role -> chosen file")
    contract: dict[str, str] = Field(default_factory=dict, description="role -> contract name, e.g. weights.pth")
    missing: list[str] = Field(default_factory=list)
    ambiguous: dict[str, list[str]] = Field(default_factory=dict, description="role -> the tied candidates")
    notes: list[str] = Field(default_factory=list, description="how the chosen files were recognised")
    problems: list[str] = Field(default_factory=list, description="what is missing or ambiguous")


def classify(folder: Path, files: list[str]) -> Recognition:
    """Picks one file per role among `files` (relative to `folder`): every file of an upload counts."""
    recognition = Recognition()
    for role, choice in choose_files(folder, files).items():
        if choice.chosen:
            recognition.chosen[role], recognition.contract[role] = choice.chosen, choice.contract_name
            recognition.notes += choice.notes()
        elif choice.tied:
            recognition.ambiguous[role] = choice.tied
        elif choice.required:
            recognition.missing.append(role)
        if choice.problem():
            recognition.problems.append(choice.problem())
    return recognition


def install_contract_files(folder: Path, recognition: Recognition) -> None:
    """Puts each chosen file at its contract name in `folder` (a hard link, or a copy where links fail)."""
    for role, path in recognition.chosen.items():
        source = folder / path
        target = folder / recognition.contract[role]
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
