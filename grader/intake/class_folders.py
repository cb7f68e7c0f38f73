"""Which folders under submissions/ are the class: one folder per student, samples and work in progress left out."""

from __future__ import annotations

from pathlib import Path

from grader.intake.blackboard import MANIFEST

# A file of this name marks a folder as a sample shipped with the grader (submissions/example): `grade NAME`
# grades it, but it is no student, so grade --all, the summary, the pages and the exports leave it out. A folder
# the import wrote (with its manifest) is a student's, whatever files they uploaded.
SAMPLE_MARKER = "SAMPLE"


def _candidate_folders(submissions_dir: Path) -> list[Path]:
    """Dot- and underscore-folders are the import's work in progress, not students."""
    submissions_dir = Path(submissions_dir)
    if not submissions_dir.is_dir():
        return []
    return sorted(p for p in submissions_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def is_sample(folder: Path) -> bool:
    """A SAMPLE file in a folder the Blackboard import did not write: a student uploading one is still graded."""
    return (Path(folder) / SAMPLE_MARKER).is_file() and not (Path(folder) / MANIFEST).exists()


def student_folders(submissions_dir: Path) -> list[Path]:
    """One folder per student: samples (a SAMPLE file inside) are not students."""
    return [folder for folder in _candidate_folders(submissions_dir) if not is_sample(folder)]


def sample_names(submissions_dir: Path) -> set[str]:
    return {folder.name for folder in _candidate_folders(submissions_dir) if is_sample(folder)}
