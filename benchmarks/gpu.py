"""`make bench-gpu`: ResNet-18 on one GPU, a bare script against the harness, and a class of ResNet-18s.

1. a bare PyTorch script: ResNet-18 (torchvision, 10 classes, random weights) over the split, on the GPU;
2. the same submission through the harness: `grader grade`, Docker backend, the container given a GPU;
3. a class of 100 distinct copies (--class-size) graded with `grader grade --all` on the Docker
   backend, one worker per visible GPU, each holding a GPU lease (grader/batch/run.py).

The split is --data, else a synthetic 10,000-image npz in the official format. Targets: inference
over the split under 1 s, the class under 5 minutes; each is printed as an `expect` line. On a
machine without a GPU it says so and exits 0, having measured nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import click

NO_GPU = "no GPU on this machine: bench-gpu measures nothing"
NO_CUDA_TORCH = "a GPU is visible but this torch has no CUDA (a CPU build?): bench-gpu measures nothing"
REPO = Path(__file__).resolve().parent.parent

MODEL_SOURCE = """
import torchvision


def build_model():
    return torchvision.models.resnet18(num_classes=10)
"""

BARE_SCRIPT = """
import sys, time, importlib.util, torch
from grader.datasets import load_split
spec = importlib.util.spec_from_file_location("model", sys.argv[1] + "/model.py")
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
model = module.build_model(); model.load_state_dict(torch.load(sys.argv[1] + "/weights.pth", weights_only=True))
model = model.cuda().eval()
split = load_split(sys.argv[2])
with torch.inference_mode():
    model(torch.zeros(8, 3, 32, 32, device="cuda")); torch.cuda.synchronize()  # CUDA start, not inference
    started = time.perf_counter()
    images = torch.from_numpy(split.images).cuda().permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)
    predictions = torch.cat([model(batch).argmax(1) for batch in images.split(500)]).cpu().numpy()
    torch.cuda.synchronize()
print("inference", time.perf_counter() - started)
print("accuracy", (predictions == split.labels).mean())
"""


def gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


def make_split(folder: Path, images: int = 10_000) -> Path:
    """Random images in the official npz format: timing does not need real pictures."""
    import numpy as np

    rng = np.random.default_rng(0)
    path = folder / "split.npz"
    np.savez(path, images=rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8), labels=np.arange(images) % 10)
    return path


def make_submission(folder: Path, seed: int) -> Path:
    import torch
    import torchvision

    folder.mkdir(parents=True)
    (folder / "model.py").write_text(textwrap.dedent(MODEL_SOURCE))
    torch.manual_seed(seed)  # distinct weights per student
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), folder / "weights.pth")
    return folder


def run(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: graded, with a student's failure or a low grade to report
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    return seconds, done.stdout


def result_timings(results: Path) -> list[dict]:
    return [json.loads(p.read_text()).get("timings") or {} for p in sorted(results.glob("*.json"))]


@click.command(help=__doc__.splitlines()[0])
@click.option("--data", type=click.Path(path_type=Path), help="the split (default: a synthetic 10,000-image npz)")
@click.option("--class-size", type=click.IntRange(min=1), default=100)
def main(data: Path | None, class_size: int) -> None:
    if not gpu_available():
        from grader.sandbox.gpus import visible_gpus

        print(NO_CUDA_TORCH if visible_gpus() else NO_GPU)
        return

    from benchmarks.harness import docker_ready
    from grader.rubric.pin import pin_split

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory(prefix="grader-bench-gpu-") as name:
        folder = Path(name)
        data = data or make_split(folder)
        rubric = folder / "rubric.yaml"
        shutil.copyfile(REPO / "rubric.yaml", rubric)
        pin_split(data, rubric, "bench-gpu")
        (folder / "bare.py").write_text(textwrap.dedent(BARE_SCRIPT))
        grade = [sys.executable, "-m", "grader", "grade", "--rubric", str(rubric), "--data", str(data),
                 "--sandbox", "docker"]  # fmt: skip

        one = make_submission(folder / "one" / "resnet18", seed=0)
        wall, output = run([sys.executable, str(folder / "bare.py"), str(one), str(data)], env)
        bare_inference = float(output.split("inference")[1].split()[0])
        print(f"bare script: inference {bare_inference:.3f} s, process {wall:.1f} s", flush=True)
        if not docker_ready():
            print("the Docker engine or the sandbox image does not answer (make sandbox-image): no harness figures")
            return

        wall, _ = run([*grade, str(one), "--results", str(folder / "one-results")], env)
        (timings,) = result_timings(folder / "one-results")
        harness_inference = timings.get("inference_seconds") or float("nan")
        print(f"harness (docker, GPU): inference {harness_inference:.3f} s, process {wall:.1f} s", flush=True)

        for number in range(class_size):
            make_submission(folder / "class" / f"student{number:03d}", seed=number + 1)
        wall, _ = run([*grade, "--all", "--force", "--submissions", str(folder / "class"),
                       "--results", str(folder / "class-results")], env)  # fmt: skip
        graded = len(result_timings(folder / "class-results"))
        print(f"class of {class_size} ResNet-18 (docker, GPU leases): {graded} results in {wall / 60:.2f} min, "
              f"{wall / max(graded, 1):.2f} s per submission")  # fmt: skip
    print(f"expect bare inference under 1 s: {'yes' if bare_inference < 1 else 'NO'}")
    print(f"expect harness inference under 1 s: {'yes' if harness_inference < 1 else 'NO'}")
    per_hundred = wall / class_size * 100  # the target is stated for a class of 100
    print(f"expect class of 100 under 5 minutes: {'yes' if per_hundred < 300 and graded == class_size else 'NO'}"
          f" ({per_hundred / 60:.2f} min per 100)")  # fmt: skip


if __name__ == "__main__":
    main()
