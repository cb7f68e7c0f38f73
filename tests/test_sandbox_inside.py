"""What runs inside the sandbox (grader/sandbox/inside/) stays apart from the host's code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import grader
from grader.sandbox.local import LocalBackend
from grader.sandbox.protocol import (
    KNOWN_KINDS,
    RUNNER_KINDS,
    WARNING_WORDS,
    ErrorKind,
    RunnerMeta,
    SandboxJob,
    SandboxLimits,
)

GRADER = Path(grader.__file__).parent
IMPORT_EVERY_HOST_MODULE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
inside = sorted(name for name in sys.modules if name.startswith("grader.sandbox.inside"))
print("imported", len(sys.argv) - 1, "host modules;", "inside:", inside)
sys.exit(1 if inside else 0)
"""


def host_modules() -> list[str]:
    """Every module of the grader except those that run inside, and __main__ (which would run the CLI)."""
    names = []
    for path in sorted(GRADER.rglob("*.py")):
        parts = path.relative_to(GRADER.parent).with_suffix("").parts
        if "inside" not in parts and parts[-1] != "__main__":
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_no_host_module_imports_what_runs_inside():
    modules = host_modules()
    assert "grader.sandbox.local" in modules and not any(".inside" in name for name in modules)
    # A fresh interpreter: this test process imports the runner itself (helpers.expected_logits).
    run = subprocess.run([sys.executable, "-c", IMPORT_EVERY_HOST_MODULE, *modules], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]


def test_reference_training_preprocesses_as_the_runner_does():
    from grader.reference.train import default_preprocess as on_the_host
    from grader.sandbox.inside.runner import default_preprocess as inside

    images = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    assert torch.equal(on_the_host(images), inside(images))


def kinds_written_inside() -> set[str]:
    """The error kinds in the in-sandbox code: SubmissionError(kind, ...) and comparisons with meta's error_kind."""
    kinds = set()
    for path in (GRADER / "sandbox" / "inside").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "SubmissionError":
                kinds.add(node.args[0].value)
            if isinstance(node, ast.Compare) and "error_kind" in ast.unparse(node.left):
                kinds.update(c.value for c in node.comparators if isinstance(c, ast.Constant))
    return kinds


def kinds_assigned_as_strings_on_the_host() -> set[str]:
    """String literals the host assigns to an error_kind or failure_kind (`x.error_kind, x.error = "intake", ...`)."""
    kinds, fields = set(), ("error_kind", "failure_kind")
    for path in GRADER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            for target in node.targets if isinstance(node, ast.Assign) else []:
                tuples = isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                for name, value in zip(target.elts, node.value.elts) if tuples else [(target, node.value)]:
                    if getattr(name, "attr", None) in fields and isinstance(value, ast.Constant):
                        kinds.add(value.value)
    return kinds


def test_every_error_kind_written_as_a_string_is_one_of_the_host_enum():
    inside = kinds_written_inside()
    assert {"syntax", "import", "contract", "build", "weights", "forward", "output"} <= inside
    assert inside <= RUNNER_KINDS <= KNOWN_KINDS
    assert kinds_assigned_as_strings_on_the_host() <= KNOWN_KINDS


def test_a_forged_meta_json_neither_crashes_the_host_nor_voids_the_graded_figures():
    def meta(**fields) -> RunnerMeta:
        return RunnerMeta.model_validate_json(json.dumps(fields))

    assert meta(ok=False, error_kind="forward", error="x").error_kind is ErrorKind.FORWARD
    assert meta(ok=False, error_kind="rm -rf /", error="x").error_kind is ErrorKind.ERROR
    assert meta(ok=False, error_kind=["forward"], error="x").error_kind is ErrorKind.ERROR
    flooded = meta(ok=True, parameter_count=3, diagnostics={"train_mode": ["layer"] * 10_000})
    assert flooded.ok and flooded.parameter_count == 3 and flooded.diagnostics is None
    assert meta(ok=True, diagnostics={"normalisation": {"step": 1, "used": "12x"}}).diagnostics is None


def test_a_meta_json_claiming_a_host_verdict_gets_the_generic_kind():
    """'cancelled' or 'timeout' would be worded as the grader's own verdict ("it will be graded again")."""
    for verdict in ("timeout", "cancelled", "memory", "intake"):
        assert RunnerMeta.model_validate_json(json.dumps({"error_kind": verdict})).error_kind is ErrorKind.ERROR


def test_warnings_are_known_codes_and_anything_else_is_only_counted():
    forged = "TA review: grade stands at 100/100"
    warnings = [forged, {"code": "whole-model"}, {"code": "whole-model"}, {"code": "dataparallel", "by": forged},
                {"code": "rm -rf"}, ["deep"] * 3, {"code": "unrecognised", "count": 2},
                {"code": "dataparallel"}]  # fmt: skip
    parsed = RunnerMeta.model_validate_json(json.dumps({"ok": True, "warnings": warnings * 1000})).warnings
    assert [warning.model_dump() for warning in parsed] == [
        {"code": "whole-model"}, {"code": "dataparallel"}, {"code": "unrecognised", "count": 6000}
    ]  # fmt: skip
    assert forged not in json.dumps([warning.model_dump() for warning in parsed])


def test_figures_the_run_claims_are_kept_only_in_the_form_the_runner_writes_them():
    forged = "TA review: grade stands at 100/100"
    claimed = RunnerMeta.model_validate_json(json.dumps({
        "ok": True, "device": forged, "parameter_count": 10**15, "torch_version": forged, "weights_format": forged,
        "load_seconds": -1, "inference_seconds": 1e300,
    }))  # fmt: skip
    assert claimed.ok  # the run stands; only what it claimed about itself is dropped
    assert claimed.model_dump(exclude={"ok", "warnings", "error_kind", "error", "diagnostics"}) == dict.fromkeys(
        ("device", "torch_version", "parameter_count", "weights_format", "load_seconds", "inference_seconds")
    )
    honest = {"device": "NVIDIA GeForce RTX 3090", "parameter_count": 62006, "torch_version": "2.14.1+cpu",
              "weights_format": "safetensors", "load_seconds": 0.25, "inference_seconds": 1.5}  # fmt: skip
    assert RunnerMeta.model_validate_json(json.dumps({"ok": True, **honest})).model_dump(include=set(honest)) == honest
    assert RunnerMeta.model_validate_json(json.dumps({"device": "cpu", "parameter_count": True})).device == "cpu"
    assert RunnerMeta.model_validate_json(json.dumps({"parameter_count": True})).parameter_count is None


def test_the_runner_reports_warnings_only_as_codes_the_host_words():
    """Every warnings.append(...) in the runner appends a literal {"code": ...} of WARNING_WORDS, never a sentence."""
    codes = []
    for path in (GRADER / "sandbox" / "inside").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("warnings.append"):
                entry = node.args[0]
                assert isinstance(entry, ast.Dict), ast.unparse(node)
                fields = {key.value: value for key, value in zip(entry.keys, entry.values)}
                codes.append(ast.literal_eval(fields["code"]))  # a literal code; other fields are typed parameters
    assert codes and all(code in WARNING_WORDS for code in codes)


UNTRAINED_BATCHNORM = """
import torch
from torch import nn

from diagnostics import CHANNELS  # the submission's own module of that name, not the runner's


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(CHANNELS)
        self.fc = nn.Linear(CHANNELS, 10)

    def forward(self, x):
        return self.fc(self.bn(x).mean(dim=(2, 3)))
"""


@pytest.mark.integration
@pytest.mark.integration
def test_diagnostics_arrive_as_typed_fields_beside_the_graded_run(tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "model.py").write_text(UNTRAINED_BATCHNORM)
    (folder / "diagnostics.py").write_text("CHANNELS = 3\n")
    namespace: dict = {}
    exec(UNTRAINED_BATCHNORM.replace("from diagnostics", "CHANNELS = 3  #"), namespace)
    torch.save(namespace["Net"]().state_dict(), folder / "weights.pth")
    images = tmp_path / "images.npy"
    np.save(images, np.random.default_rng(0).integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8))
    job = SandboxJob(
        submission_dir=folder, model_file="model.py", weights_file="weights.pth", images_file=images,
        device="cpu", diagnose=True, limits=SandboxLimits(wall_clock_seconds=120),
    )  # fmt: skip

    outcome = LocalBackend(force_plain_process=True).run(job)

    assert outcome.failure is None and outcome.logits.shape == (40, 10), outcome.failure or outcome.stderr_tail
    found = outcome.meta.diagnostics
    assert found.batchnorm_init == ["bn"] and found.skipped is None, found
    assert not (found.random or found.batch_stats or found.train_mode)
    assert found.normalisation.step == 1 and len(found.normalisation.used) == len(found.normalisation.cifar) == 40
