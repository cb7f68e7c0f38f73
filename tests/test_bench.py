"""The benchmarks' own pieces: the throughput class, the overhead's inference sum, bench-gpu without a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from benchmarks import gpu as bench_gpu
from benchmarks import harness as bench

EXAMPLE = Path(__file__).resolve().parent.parent / "submissions" / "example"


def test_the_throughput_class_has_distinct_weights_that_barely_differ(tmp_path):
    submissions = bench.make_class(tmp_path, EXAMPLE, 3)
    students = sorted(p.name for p in submissions.iterdir())
    assert students == ["student000", "student001", "student002"]
    weights = [(submissions / s / "weights.pth").read_bytes() for s in students]
    assert len(set(weights)) == 3  # nothing is skipped as a duplicate or unchanged
    original = torch.load(EXAMPLE / "weights.pth", weights_only=True)
    for student in students:
        folder = submissions / student
        assert (folder / "answers.md").read_bytes() == (EXAMPLE / "answers.md").read_bytes()
        assert (folder / "model.py").read_bytes() == (EXAMPLE / "model.py").read_bytes()
        copy = torch.load(folder / "weights.pth", weights_only=True)
        assert copy.keys() == original.keys()
        largest = max((copy[name] - original[name]).abs().max().item() for name in original)
        assert 0 < largest <= 3.1e-6


def test_the_overhead_subtracts_the_inference_seconds_the_results_report(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"timings": {"inference_seconds": 1.25}}))
    (tmp_path / "b.json").write_text(json.dumps({"timings": {"inference_seconds": 0.5}}))
    (tmp_path / "failed.json").write_text(json.dumps({"timings": {"inference_seconds": None}}))
    (tmp_path / "old.json").write_text(json.dumps({"timings": None}))
    assert bench.inference_seconds(tmp_path) == 1.75
    assert bench.mean_timing(tmp_path, "inference_seconds") == 0.875
    assert str(bench.mean_timing(tmp_path, "sandbox_seconds")) == "nan"


def test_bench_gpu_without_a_gpu_says_so_and_exits_0():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU, even on a machine that has one
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == bench_gpu.NO_GPU


def test_bench_gpu_builds_resnet18_submissions_in_the_contract_format(tmp_path):
    folder = bench_gpu.make_submission(tmp_path / "student", seed=1)
    other = bench_gpu.make_submission(tmp_path / "other", seed=2)
    assert (folder / "weights.pth").read_bytes() != (other / "weights.pth").read_bytes()
    namespace: dict = {}
    exec((folder / "model.py").read_text(), namespace)
    model = namespace["build_model"]()
    model.load_state_dict(torch.load(folder / "weights.pth", weights_only=True))
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
