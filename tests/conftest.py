"""Fixtures that build real files: CIFAR-format splits, rubrics and submissions, all tiny."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from rich.console import Console

from grader.datasets import LabelledImages

TINY_MODEL = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv(x)), 4)
        return self.fc(x.view(x.size(0), -1))
"""


def require_tool(available: bool, reason: str) -> None:
    """Skip on a laptop that lacks the tool; under CI a missing tool is a failure, never a silent skip."""
    if available:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_split() -> LabelledImages:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(40, dtype=np.int64) % 10
    return LabelledImages(images=images, labels=labels, source="tiny")


def write_cifar_batches(split: LabelledImages, root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    data = split.images.transpose(0, 3, 1, 2).reshape(len(split), -1)
    batch = {"batch_label": "testing batch 1 of 1", "labels": split.labels.tolist(), "data": data,
             "filenames": [f"img_{i}.png" for i in range(len(split))]}  # fmt: skip
    with open(folder / "test_batch", "wb") as stream:
        pickle.dump(batch, stream, protocol=2)
    return root


def write_npz(split: LabelledImages, path: Path) -> Path:
    np.savez(path, images=split.images, labels=split.labels)
    return path


@pytest.fixture
def cifar_root(tmp_path, tiny_split) -> Path:
    return write_cifar_batches(tiny_split, tmp_path / "data")


def write_rubric(path: Path, split_path: Path, split: LabelledImages, **sections) -> Path:
    rubric = {
        "course": "Lab 8",
        "split": {
            "name": "tiny",
            "format": "npz" if split_path.suffix == ".npz" else "cifar-batches",
            "path": str(split_path),
            "sha256": split.content_sha256(),
        },  # fmt: skip
        "sandbox": {
            "backend": "local",
            "device": "cpu",
            "batch_size": 16,
            "limits": {"wall_clock_seconds": 60, "memory_mb": 3072},
        },  # fmt: skip
        "exercise1": {"points": 100, "anchors": [{"accuracy": 0.1, "points": 0}, {"accuracy": 0.9, "points": 100}]},
    }
    rubric.update(sections)
    path.write_text(yaml.safe_dump(rubric, sort_keys=False))
    return path


@pytest.fixture
def rubric_file(tmp_path, tiny_split) -> Path:
    split_path = write_npz(tiny_split, tmp_path / "split.npz")
    return write_rubric(tmp_path / "rubric.yaml", split_path, tiny_split)


def tiny_model(seed: int = 0) -> torch.nn.Module:
    namespace: dict = {}
    exec(compile(TINY_MODEL, "tiny_model", "exec"), namespace)
    torch.manual_seed(seed)
    return namespace["Net"]()


def make_submission(
    root: Path, name: str, model_source: str = TINY_MODEL, weights: dict | None = None, seed: int = 0
) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(textwrap.dedent(model_source))
    torch.save(weights if weights is not None else tiny_model(seed).state_dict(), folder / "weights.pth")
    return folder


def expected_logits(split: LabelledImages, seed: int = 0) -> np.ndarray:
    """The tiny model run in this process with the default preprocessing, for comparison with a sandbox."""
    # Tests only: host code never imports what runs inside the sandbox (test_sandbox_inside.py).
    from grader.sandbox.inside.runner import default_preprocess

    model = tiny_model(seed).eval()
    with torch.inference_mode():
        return model(default_preprocess(torch.from_numpy(split.images))).numpy()


@pytest.fixture
def submissions(tmp_path) -> Path:
    folder = tmp_path / "submissions"
    folder.mkdir()
    return folder


def bwrap_available() -> bool:
    from grader.sandbox.local import bwrap_works

    return shutil.which("bwrap") is not None and bwrap_works()


# What a student controls (a folder name, an error message, a file name), written to break a rich console:
# a closing tag with nothing open, markup that colours, a hyperlink and a raw ANSI colour sequence.
HOSTILE = "[/] [bold red]x[/bold red] [link=http://evil]click[/link] \x1b[31mEVIL"


def terminal() -> Console:
    """A console that renders colours and hyperlinks as a terminal would, into a string."""
    return Console(file=io.StringIO(), force_terminal=True, width=400)


def assert_printed_literally(output: str) -> None:
    assert "[/]" in output and "[bold red]x[/bold red]" in output and "[link=http://evil]click[/link]" in output
    assert "\x1b]8;" not in output  # no hyperlink
    assert "\x1b[31mEVIL" not in output  # the student's own escape sequence never reaches the terminal
