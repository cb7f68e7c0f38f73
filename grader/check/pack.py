"""The upload zip: the staged contract files, flat, under their contract names."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from grader.check.file_checks import Staged


def write_upload_zip(staged: Staged, output: Path) -> list[str]:
    """Writes the zip atomically and returns its member names (always bare names: no folders, no '\\')."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(path for path in staged.files.folder.iterdir() if path.is_file())
    temporary = output.with_name(f".{output.name}.partial")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, arcname=path.name)
    os.replace(temporary, output)
    return [path.name for path in files]


def default_zip_path(submission: Path) -> Path:
    return Path.cwd() / f"{Path(submission).resolve().name or 'submission'}.zip"
