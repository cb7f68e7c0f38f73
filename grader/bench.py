"""`make bench`: the tutorial's LeNet-5 graded three ways, each as a whole process, timed side by side.

1. the harness end to end (`grader grade`, local sandbox, pinned split, result written), on the model and
   weights alone (Exercise 1, the work the other two do), again with the integrity passes off (what the
   secret order, the perturbed copies and, with --train, the training sample cost), and again with the
   answers file (Exercise 2 loads its sentence-embedding model once per process, which a class amortises);
2. a bare PyTorch script: load the weights, one batched pass over the uint8 array;
3. the tutorial's own evaluation loop: PIL images through ToTensor/Normalize, a DataLoader of batch 64;
4. the harness with the Docker sandbox, when the engine and image answer.

It ends with one `ratio <name> <value>` line per ratio so that scripts can read it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

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


def docker_ready() -> bool:
    try:
        from grader.sandbox.docker import DockerBackend

        DockerBackend().check_available()
        return True
    except Exception:  # noqa: BLE001 - any missing piece means: no Docker column
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CIFAR10_ROOT", "data")))
    parser.add_argument("--submission", type=Path, default=Path("submissions/example"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train", type=Path, help="training split, pinned so that the integrity checks run in full")
    args = parser.parse_args(argv)

    from grader.rubric.pin import pin_split

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as folder:
        rubric = Path(folder) / "rubric.yaml"
        rubric.write_text(Path("rubric.yaml").read_text())
        pin_split(args.data, rubric, "bench")
        if args.train:
            pin_split(args.train, rubric, "bench-train", train=True)
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
            shutil.copy(args.submission / name, model_only / name)
        grade = [sys.executable, "-m", "grader", "grade", "--rubric", str(rubric), "--data", str(args.data),
                 "--results", str(Path(folder) / "results")]  # fmt: skip
        no_integrity = [arg if arg != str(rubric) else str(plain) for arg in grade]
        runs = {
            "harness": grade + [str(model_only), "--sandbox", "local"],
            "no-integrity": no_integrity + [str(model_only), "--sandbox", "local"],
            "harness+answers": grade + [str(args.submission.resolve()), "--sandbox", "local"],
            "bare": [sys.executable, str(bare), str(args.submission), str(args.data)],
            "tutorial": [sys.executable, str(tutorial), str(args.submission), str(args.data)],
        }
        if docker_ready():
            runs["docker"] = grade + [str(model_only), "--sandbox", "docker"]
        seconds = {}
        for name, command in runs.items():
            seconds[name], output = timed(command, args.repeats, env)
            accuracy = next((line for line in output.splitlines() if "ccuracy" in line), "").strip()
            print(f"{name:>15}: {seconds[name]:6.2f} s (median of {args.repeats})  {accuracy[:60]}")
    print("ratio harness/bare", round(seconds["harness"] / seconds["bare"], 3))
    print("ratio harness/no-integrity", round(seconds["harness"] / seconds["no-integrity"], 3))
    print("ratio harness+answers/bare", round(seconds["harness+answers"] / seconds["bare"], 3))
    print("ratio harness/tutorial", round(seconds["harness"] / seconds["tutorial"], 3))
    if "docker" in seconds:
        print("ratio docker/bare", round(seconds["docker"] / seconds["bare"], 3))
        print("ratio docker/harness", round(seconds["docker"] / seconds["harness"], 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
