"""What model.py's source shows without running it: the calls that run when the grader imports it.

Parsed with ast only. The self-check turns a training call at import into advice (grader/check/file_checks.py);
grading adds it to the reason when importing model.py ran past the import limit.
"""

from __future__ import annotations

import ast
from pathlib import Path

# Calls that look like training or data loading.
TRAINING_CALLS = {"backward", "step", "zero_grad", "fit", "CIFAR10", "DataLoader", "download_url"}
MAX_SOURCE_BYTES = 2 << 20  # larger model.py files are not read here (the sandbox still runs them)


def top_level_statements(tree: ast.Module) -> list[ast.stmt]:
    """What runs when the grader imports model.py: not functions, classes or the __main__ block."""
    kept = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            continue
        kept.append(node)
    return kept


def called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def training_call_at_import(tree: ast.Module) -> ast.Call | None:
    """The first call among the import-time statements that looks like training or data loading."""
    for statement in top_level_statements(tree):
        for node in ast.walk(statement):
            if isinstance(node, ast.Call) and called_name(node) in TRAINING_CALLS:
                return node
    return None


def describe_training_at_import(model_path: Path) -> str | None:
    """'model.py line 40 calls zero_grad() at import', or None (nothing found, unreadable, or too large)."""
    try:
        if model_path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        tree = ast.parse(model_path.read_text(encoding="utf-8", errors="replace"), filename=model_path.name)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    call = training_call_at_import(tree)
    if call is None:
        return None
    return f"{model_path.name} line {call.lineno} calls {called_name(call)}() at import"
