"""Fixtures that build real files (CIFAR-format splits, rubrics, submissions, all tiny), the golden-file switch,
and the line between the two tiers. The helpers they use, and tests share, are in helpers.py.

Two tiers: `make test-fast` (`-m "not integration and not docker"`) grades through helpers.FakeBackend and
never starts a sandbox; tests marked `integration` (bubblewrap or the plain-process sandbox) or `docker` run
the real ones. An unmarked test that starts a real sandbox fails, saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers import Goldens, write_cifar_batches, write_npz, write_rubric

from grader.datasets import LabelledImages


def pytest_addoption(parser):
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/golden/ from what the code produces now, instead of comparing with it",
    )


@pytest.fixture
def golden(request) -> Goldens:
    """golden.file(name, data) and golden.folder(name, files): compared with tests/golden/, or rewritten there."""
    return Goldens(update=request.config.getoption("--update-goldens"))


@pytest.fixture(autouse=True)
def real_sandboxes_only_in_the_integration_tier(request, monkeypatch):
    """A real backend's run() in a test not marked integration or docker fails: the fast tier stays fast."""
    if request.node.get_closest_marker("integration") or request.node.get_closest_marker("docker"):
        return

    def refuse(backend, job):
        raise AssertionError(
            f"{request.node.nodeid} starts a real sandbox ({type(backend).__name__}): mark it "
            "@pytest.mark.integration, or grade through helpers.FakeBackend"
        )

    monkeypatch.setattr("grader.sandbox.local.LocalBackend.run", refuse)
    monkeypatch.setattr("grader.sandbox.docker.DockerBackend.run", refuse)


@pytest.fixture(scope="session", autouse=True)
def embeddings_cache_in_a_temporary_folder(tmp_path_factory):
    """Exercise 2's encodings of rubric texts go to a throwaway cache, never the user's ~/.cache."""
    from grader.answers.similarity.embedding_cache import CACHE_ENV

    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("embeddings-cache"))
    yield
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


@pytest.fixture(scope="session")
def tiny_split() -> LabelledImages:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(40, dtype=np.int64) % 10
    return LabelledImages(images=images, labels=labels, source="tiny")


@pytest.fixture
def cifar_root(tmp_path, tiny_split) -> Path:
    return write_cifar_batches(tiny_split, tmp_path / "data")


@pytest.fixture
def rubric_file(tmp_path, tiny_split) -> Path:
    split_path = write_npz(tiny_split, tmp_path / "split.npz")
    return write_rubric(tmp_path / "rubric.yaml", split_path, tiny_split)


@pytest.fixture
def submissions(tmp_path) -> Path:
    folder = tmp_path / "submissions"
    folder.mkdir()
    return folder
