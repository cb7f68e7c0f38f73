"""What several test modules share: builders of real files (splits, rubrics, submissions, Blackboard zips),
the fake sandbox of the fast tier, golden-file comparison, and the probes of the real sandboxes.

Fixtures live in conftest.py; everything here is a plain function or class, imported as `from helpers import ...`.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import textwrap
import threading
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from rich.console import Console

from grader.datasets import LabelledImages
from grader.sandbox.base import SandboxBackend
from grader.sandbox.protocol import RunnerMeta, SandboxJob, SandboxLimits, SandboxOutcome

# --- tools the integration tier needs ------------------------------------------------------------


def require_tool(available: bool, reason: str) -> None:
    """Skip on a laptop that lacks the tool; under CI a missing tool is a failure, never a silent skip."""
    if available:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


def bwrap_available() -> bool:
    """bubblewrap works here and is not turned off (GRADER_LOCAL_ISOLATION=process, a laptop's setting)."""
    from grader.sandbox.bwrap import bwrap_works

    forced_off = os.environ.get("GRADER_LOCAL_ISOLATION") == "process"
    return not forced_off and shutil.which("bwrap") is not None and bwrap_works()


def docker_backend():
    """The Docker backend, or a skip (a failure under CI) saying why the engine or image is unusable."""
    from grader.sandbox.base import SandboxUnavailable
    from grader.sandbox.docker import DockerBackend

    backend = DockerBackend()
    try:
        backend.check_available()
    except SandboxUnavailable as error:
        require_tool(False, str(error))
    return backend


def sandbox_containers(**labels: str) -> list[str]:
    """What `docker ps -a` shows of the sandbox's containers, optionally narrowed by more labels."""
    from grader.sandbox.docker_cleanup import LABEL

    filters = [f"--filter=label={LABEL}"] + [f"--filter=label={key}={value}" for key, value in labels.items()]
    listing = subprocess.run(["docker", "ps", "-a", "-q", *filters], capture_output=True, text=True, check=True)
    return listing.stdout.split()


# --- splits, rubrics, submissions ----------------------------------------------------------------

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


def write_rubric(path: Path, split_path: Path, split: LabelledImages, **sections) -> Path:
    """A relative split_path is kept relative: it is read beside the rubric, and the rubric's hashes stay put.

    The integrity checks are off unless a test turns them on (INTEGRITY_ON): the fake backend answers in the
    split's order, and most tests are about something else."""
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
        "integrity": INTEGRITY_OFF,
    }
    rubric.update(sections)
    path.write_text(yaml.safe_dump(rubric, sort_keys=False))
    return path


INTEGRITY_OFF = {"permute_order": False, "perturbation_sample": 0, "train_sample": 0, "fingerprint_sample": 0}
INTEGRITY_ON = {"permute_order": True, "perturbation_sample": 1000, "train_sample": 1000}


def edit_rubric(path: Path, edit: Callable[[dict], Any]) -> None:
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def tiny_model(seed: int = 0) -> torch.nn.Module:
    namespace: dict = {}
    exec(compile(TINY_MODEL, "tiny_model", "exec"), namespace)
    torch.manual_seed(seed)
    return namespace["Net"]()


def weights_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    torch.save(tiny_model(seed).state_dict(), buffer)
    return buffer.getvalue()


def make_submission(
    root: Path, name: str, model_source: str = TINY_MODEL, weights: dict | None = None, seed: int = 0
) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(textwrap.dedent(model_source))
    torch.save(weights if weights is not None else tiny_model(seed).state_dict(), folder / "weights.pth")
    return folder


def sandbox_job(submission: Path, images: Path, *, batch_size: int = 8, device: str = "cpu", **limits) -> SandboxJob:
    """A job for the tiny model's submission (model.py + weights.pth) over an images .npy."""
    return SandboxJob(
        submission_dir=submission,
        model_file="model.py",
        weights_file="weights.pth",
        images_file=images,
        batch_size=batch_size,
        device=device,
        limits=SandboxLimits(**limits),
    )


def expected_logits(split: LabelledImages, seed: int = 0) -> np.ndarray:
    """The tiny model run in this process with the default preprocessing, for comparison with a sandbox."""
    # Tests only: host code never imports what runs inside the sandbox (test_sandbox_inside.py).
    from grader.sandbox.inside.runner import default_preprocess

    model = tiny_model(seed).eval()
    with torch.inference_mode():
        return model(default_preprocess(torch.from_numpy(split.images))).numpy()


def write_baselines(reference_dir: Path, split_sha256: str, **accuracies: float) -> None:
    """reference/baselines.json with each baseline measured on the split of that hash."""
    from grader.reference.baselines import Baseline, BaselineFile

    reference_dir.mkdir(exist_ok=True)
    entries = [Baseline(name=n, trained=True, accuracy=a, split_sha256=split_sha256) for n, a in accuracies.items()]
    (reference_dir / "baselines.json").write_text(BaselineFile(baselines=entries).model_dump_json())


# --- Blackboard bulk downloads -------------------------------------------------------------------

ASSIGNMENT = "Lab 8"


def us_date(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    ampm = "PM" if moment.hour >= 12 else "AM"
    return f"{moment:%A}, {moment:%B} {moment.day}, {moment.year} {hour}:{moment:%M:%S} {ampm} CST"


class BulkZip:
    """Members of a Grade Center bulk download: one receipt per attempt plus its files."""

    def __init__(self):
        self.members: list[tuple[zipfile.ZipInfo | str, bytes]] = []

    def attempt(
        self, username, when: datetime, files: dict, display=None, receipt_date=None, header_extra="", text=None
    ):
        stamp = f"{when:%Y-%m-%d-%H-%M-%S}"
        stem = f"{ASSIGNMENT}_{username}_attempt_{stamp}"
        lines = [
            f"Name: {display or username.title()} ({username})",
            f"Assignment: {ASSIGNMENT}",
            f"Date Submitted: {receipt_date or us_date(when)}",
            "Current Grade: Needs Grading",
            *([header_extra] if header_extra else []),
            "",
            "Submission Field:",
            text or "There is no student submission text data for this assignment.",
            "",
            "Comments:",
            "There are no student comments for this assignment.",
            "",
            "Files:",
        ]
        if not files:
            lines.append("No files were attached to this submission.")
        for original, data in files.items():
            stored = f"{stem}_{original}"
            lines += [f"\tOriginal filename: {original}", f"\tFilename: {stored}", ""]
            if data is not None:
                self.members.append((stored, data))
        self.members.append((f"{stem}.txt", "\n".join(lines).encode()))
        return stem

    def add(self, name_or_info, data: bytes):
        self.members.append((name_or_info, data))

    def write(self, path):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in self.members:
                archive.writestr(name, data)
        return path


# --- the fake sandbox of the fast tier -----------------------------------------------------------

FAKE_LOGITS_FILE = "fake_logits.npy"


@dataclass(frozen=True)
class FakeFailure:
    """A run that failed, as a real backend reports it: the kind (syntax, timeout, memory, ...) and the reason."""

    kind: str
    message: str


Decision = np.ndarray | FakeFailure | Callable[[SandboxJob], np.ndarray | FakeFailure]


class FakeBackend(SandboxBackend):
    """A sandbox that runs nothing: each job is answered with what the test decided for that student.

    Registered nowhere in the product; a test hands it to open_session(backend=...). Student code is never
    imported, unpickled or run. What a submission "predicts", by its folder's name:
      decide[name]: logits, a FakeFailure, or a callable of the SandboxJob returning either;
      else the folder's fake_logits.npy, read with allow_pickle=False as the host reads a real run's logits;
      else logits drawn from the hash of the weights file, so that new weights move the predictions.
    Every job is kept in `jobs`, in the order received (parallel workers may append at once).
    """

    name = "fake"
    isolation = "fake (nothing runs)"

    def __init__(self, decide: Mapping[str, Decision] | None = None, *, boundary: bool = True) -> None:
        self.decide = dict(decide or {})
        self.boundary = boundary
        self.jobs: list[SandboxJob] = []
        self._lock = threading.Lock()

    @property
    def is_boundary(self) -> bool:
        return self.boundary

    def check_available(self) -> None:
        return None

    def run(self, job: SandboxJob) -> SandboxOutcome:
        with self._lock:
            self.jobs.append(job)
        decision = self.decide.get(job.submission_dir.name)
        if callable(decision):
            decision = decision(job)
        if decision is None:
            decision = self._from_folder(job)
        if isinstance(decision, FakeFailure):
            meta = RunnerMeta(ok=False, error_kind=decision.kind, error=decision.message)
            return SandboxOutcome(backend=self.name, isolation=self.isolation, meta=meta, exit_code=1,
                                  failure_kind=decision.kind, failure=decision.message)  # fmt: skip
        meta = RunnerMeta(ok=True, device="cpu", torch_version="fake", weights_format="state_dict",
                          load_seconds=0.0, inference_seconds=0.0)  # fmt: skip
        return SandboxOutcome(backend=self.name, isolation=self.isolation, meta=meta, exit_code=0, logits=decision)

    @staticmethod
    def _from_folder(job: SandboxJob) -> np.ndarray:
        chosen = job.submission_dir / FAKE_LOGITS_FILE
        if chosen.is_file():
            return np.load(chosen, allow_pickle=False)
        images = len(np.load(job.images_file, mmap_mode="r", allow_pickle=False))
        seed = hashlib.sha256((job.submission_dir / job.weights_file).read_bytes()).digest()
        return np.random.default_rng(list(seed)).standard_normal((images, 10)).astype(np.float32)


def fake_submission(root: Path, name: str, answers: str | None = None, model_source: str = TINY_MODEL) -> Path:
    """A submission for FakeBackend: model.py and weights.pth as fixed bytes (nothing loads them), answers.md too."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(textwrap.dedent(model_source))
    (folder / "weights.pth").write_bytes(f"weights of {name}".encode())
    if answers is not None:
        (folder / "answers.md").write_text(answers)
    return folder


def logits_with_accuracy(labels: np.ndarray, accuracy: float) -> np.ndarray:
    """Logits right on the first round(accuracy * N) images and one class off on the rest: that accuracy exactly."""
    labels = np.asarray(labels)
    right = round(accuracy * len(labels))
    predictions = np.where(np.arange(len(labels)) < right, labels, (labels + 1) % 10)
    logits = np.zeros((len(labels), 10), dtype=np.float32)
    logits[np.arange(len(labels)), predictions] = 1.0
    return logits


# --- golden files --------------------------------------------------------------------------------

GOLDEN_DIR = Path(__file__).with_name("golden")
VOLATILE = "<volatile>"
# Result fields that differ from one grading to the next, or from one machine to another.
VOLATILE_RESULT_FIELDS = {
    "timings": ("load_seconds", "inference_seconds", "sandbox_seconds", "total_seconds", "graded_at"),
    "inputs": ("grader_version",),
}


def normalise_result_json(text: str, roots: dict[str, str]) -> str:
    """A stored result with only what must vary replaced: timings, the grader's version, and the test's
    temporary folders (each root -> its placeholder, e.g. {"/tmp/pytest-7/class0": "<class>"})."""
    for root, placeholder in sorted(roots.items(), key=lambda pair: -len(pair[0])):
        text = text.replace(json.dumps(root)[1:-1], placeholder)
    data = json.loads(text)
    for section, names in VOLATILE_RESULT_FIELDS.items():
        for name in names:
            if (data.get(section) or {}).get(name) is not None:
                data[section][name] = VOLATILE
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _readable(data: bytes) -> list[str]:
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8"
    return data.decode(encoding, errors="replace").splitlines(keepends=True)


@dataclass(frozen=True)
class Goldens:
    """Compares what the code produces with tests/golden/ byte for byte; `update` (pytest --update-goldens)
    rewrites the files instead, to be reviewed and committed."""

    update: bool

    def file(self, name: str, data: bytes | str) -> None:
        data = data.encode("utf-8") if isinstance(data, str) else data
        path = GOLDEN_DIR / name
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return
        if not path.is_file():
            pytest.fail(f"no golden file tests/golden/{name}: run `pytest --update-goldens`, review it and commit it")
        expected = path.read_bytes()
        if data != expected:
            diff = "".join(difflib.unified_diff(_readable(expected), _readable(data), f"golden/{name}", "now", n=2))
            pytest.fail(
                f"tests/golden/{name} differs; if the change is meant, run `pytest --update-goldens` and commit "
                f"the file:\n{diff or 'the same text in other bytes (line ends or encoding)'}",
                pytrace=False,
            )

    def folder(self, name: str, files: Mapping[str, bytes | str]) -> None:
        """The folder tests/golden/<name> holds exactly these files, each equal to its golden copy."""
        folder = GOLDEN_DIR / name
        if self.update and folder.is_dir():
            shutil.rmtree(folder)
        if not self.update:
            found = sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []
            assert sorted(files) == found, f"tests/golden/{name}: files differ; `pytest --update-goldens` rewrites them"
        for file_name, data in files.items():
            self.file(f"{name}/{file_name}", data)


# --- rich output of what a student controls ------------------------------------------------------

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


CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def headless_chromium():
    """Headless Chromium through chromedriver (Debian's chromium and chromium-driver), or a skip (CI: a fail)."""
    executable = next((shutil.which(name) for name in CHROMIUM if shutil.which(name)), None)
    driver_path = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        require_tool(False, "selenium is not installed (pip install -e '.[dev]')")
    require_tool(bool(executable and driver_path), "headless Chromium needs: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = executable
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
                     "--disable-dev-shm-usage"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver_path), options=options)
