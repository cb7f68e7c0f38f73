"""Host-side checks of the files themselves: names, model.py's source, the weights file's header.

Nothing here runs student code. model.py is only parsed (ast), and the weights are opened with
torch.load(weights_only=True), which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import ast
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.check.findings import Finding
from grader.intake.contract import contract_name, is_torchscript_archive
from grader.intake.model_source import called_name, training_call_at_import
from grader.intake.submission import IntakeError, SubmissionFiles, find_submission_files

SAVE_STATE_DICT = 'torch.save(model.state_dict(), "weights.pth")'
WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]|\\\\|[\w.-]\\[\w.-]+\.\w{1,12}$")
MACHINE_PATH = re.compile(r"^(/home/|/Users/|/content/|/kaggle/|/mnt/|~/)")


@dataclass
class Staged:
    """The contract files copied under the names the upload will hold, and what was left out."""

    files: SubmissionFiles
    sources: dict[str, str] = field(default_factory=dict)  # staged name -> original name
    left_out: list[str] = field(default_factory=list)


def stage_submission(folder: Path, staging: Path) -> tuple[Staged | None, list[Finding]]:
    """Copies model.py, the weights and the answers into staging/<name>/ under their contract names."""
    folder = Path(folder)
    try:
        found = find_submission_files(folder, folder.resolve().name)
    except IntakeError as error:
        return None, [Finding(level="error", code="files", message=str(error))]
    target = Path(staging) / (folder.resolve().name or "submission")
    target.mkdir(parents=True)
    target.chmod(0o755)  # the sandbox's unprivileged user must read it
    names = {role: path and contract_name(role, path) for role, path in found.roles().items()}
    sources = {names[role]: path for role, path in found.roles().items() if path}
    for staged_name, original in sources.items():
        shutil.copyfile(folder / original, target / staged_name)
        (target / staged_name).chmod(0o644)
    findings = [Finding(level="info", code="files", message=note) for note in found.notes]
    left_out = sorted(
        p.name
        for p in folder.iterdir()
        if p.name not in sources.values() and not p.name.startswith(".") and p.name != "__pycache__"
    )
    if left_out:
        shown = ", ".join(left_out[:8]) + (" ..." if len(left_out) > 8 else "")
        findings.append(Finding(level="info", code="left-out", message=f"not part of the upload: {shown}"))
    staged = found.model_copy(update={"folder": target, **{f"{role}_file": name for role, name in names.items()}})
    return Staged(files=staged, sources=sources, left_out=left_out), findings


# --- model.py ----------------------------------------------------------------------------


def source_findings(model_path: Path, folder: Path) -> list[Finding]:
    """Advice from reading model.py: machine-specific paths, local imports, training at import time."""
    try:
        tree = ast.parse(model_path.read_text(encoding="utf-8", errors="replace"), filename=model_path.name)
    except SyntaxError:
        return []  # the sandbox reports it with the line number, as grading does
    findings = []
    for node in ast.walk(tree):
        if _is_machine_path(node):
            findings.append(_path_finding(node))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            findings += _local_import_findings(node, folder)
    training = training_call_at_import(tree)
    if training is not None:
        findings.append(_training_finding(training))
    return findings


def _is_machine_path(node: ast.AST) -> bool:
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 300):
        return False
    return bool(WINDOWS_PATH.search(node.value) or MACHINE_PATH.search(node.value))


def _path_finding(node: ast.Constant) -> Finding:
    return Finding(
        level="warning",
        code="machine-path",
        message=f"model.py line {node.lineno}: {node.value!r} is a path on your computer "
        "(Windows drive or backslashes, or a home folder); it does not exist where the grader runs (Linux)",
        hint="model.py must not open files: the grader loads the weights itself. If you need a file beside "
        "model.py, use pathlib.Path(__file__).with_name('name'); write paths with '/' (pathlib), never '\\'.",
    )


def _local_import_findings(node: ast.Import | ast.ImportFrom, folder: Path) -> list[Finding]:
    if isinstance(node, ast.ImportFrom):
        modules = [node.module or ""] if node.level == 0 else [alias.name for alias in node.names]
    else:
        modules = [alias.name for alias in node.names]
    findings = []
    for module in modules:
        top = module.split(".")[0]
        if top and top != "model" and ((folder / f"{top}.py").is_file() or (folder / top).is_dir()):
            findings.append(
                Finding(
                    level="error",
                    code="local-import",
                    message=f"model.py line {node.lineno} imports {top}, a file of yours that is not uploaded",
                    hint=f"Only model.py, the weights and the answers are uploaded: copy what model.py needs "
                    f"from {top} into model.py.",
                )
            )
    return findings


def _training_finding(call: ast.Call) -> Finding:
    return Finding(
        level="warning",
        code="trains-at-import",
        message=f"model.py line {call.lineno}: {called_name(call)}() runs when model.py is imported; "
        "it looks like training or data loading, which the grader's time limit will stop",
        hint="Keep only the model class (and build_model/preprocess) at the top level; move training under\n"
        "    if __name__ == '__main__':\n        train()",
    )


# --- the weights file ----------------------------------------------------------------------


def weights_findings(weights_path: Path) -> list[Finding]:
    """GPU tensors, read from the storage locations torch.save records; never unpickles a class."""
    if weights_path.suffix == ".safetensors" or is_torchscript_archive(weights_path):
        return []
    import torch

    locations: set[str] = set()

    def remember(storage, location):
        locations.add(str(location))
        return storage

    if not _torch_save_file(weights_path):
        return [unreadable_weights_finding(weights_path.name)]
    try:
        torch.load(weights_path, map_location=remember, weights_only=True)
    except Exception:  # noqa: BLE001 - whole pickled models and other faults are reported by the sandbox
        return []
    devices = sorted(loc for loc in locations if not loc.startswith("cpu"))
    if not devices:
        return []
    return [
        Finding(
            level="warning",
            code="gpu-tensors",
            message=f"the weights were saved from {', '.join(devices)} tensors. The grader loads them with "
            "map_location='cpu', so they work here, but torch.load without map_location fails on any "
            "computer without a GPU",
            hint="Save CPU copies: torch.save({k: v.cpu() for k, v in model.state_dict().items()}, "
            "'weights.pth'); load with torch.load(path, map_location='cpu').",
        )
    ]


def _torch_save_file(path: Path) -> bool:
    """Whether the file has the form torch.save writes: a complete zip archive, or (before PyTorch 1.6) a pickle."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as file:
        return file.read(1) == b"\x80"  # a pickle's PROTO opcode, which every torch.save pickle starts with


def unreadable_weights_finding(name: str) -> Finding:
    return Finding(
        level="error",
        code="weights-unreadable",
        message=f"{name} cannot be read as weights saved by PyTorch: it is not a file that torch.save wrote, "
        "or it was cut short",
        hint=f"Save the weights again with\n    {SAVE_STATE_DICT}\nand upload the file that command wrote "
        "(not a Git LFS pointer, not the output of np.save or pickle.dump).",
    )


def defines_preprocess(model_path: Path | None) -> bool:
    if model_path is None or not model_path.is_file():
        return False
    try:
        tree = ast.parse(model_path.read_text(encoding="utf-8", errors="replace"))
    except SyntaxError:
        return False
    return any(isinstance(node, ast.FunctionDef) and node.name == "preprocess" for node in tree.body)
