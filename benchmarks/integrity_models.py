"""The students of `make bench-integrity`: two honest CNNs and seven cheats, built once into a cache folder.

- honest: a wider LeNet (the tutorial's two 5x5 conv + pool stages and three linear layers, 64/128 channels
  instead of 6/16) trained on the training split only, with a fixed seed;
- lenet5-seed-2: the tutorial LeNet-5 trained as reference/lenet5 was, with another seed: with reference-lenet5, two
  fully trained independent models of one architecture, never to be paired;
- trained-on-test: the same network, trained on train + test (2 epochs);
- order-replay: the split's labels in model.py, returned one-hot by a running counter; it never looks at the pixels;
- lookup-table: sha1 of each test image's bytes -> its label, in model.py; uniform logits for any other image;
- fine-tuned-copy: the honest weights, fine-tuned for one epoch on the training split with another seed;
- nearest-neighbour-table: mirror-invariant 4x4 block means of the test images and of every 50th training image
  (the sample an earlier grader drew by a rule in its code), each query also tried shifted back one pixel, with 250
  deliberate mistakes (issue 22: 97.5%, no flag from that grader);
- table-with-lenet-fallback: sha1 of the exact pixels of the same images -> label, the reference LeNet-5 for
  anything else (issue 22: a perturbation drop of 23 points, under that grader's 25-point rule);
- second-choice-copy: honest's weights (re-saved with one extra buffer, so another file) answering the second
  class wherever the top two logits lie within 0.75 (issue 22: kappa 0.639 against a bar of 0.707, not paired).

The networks are trained by grader/reference/train.py (checkpoints, so a stopped build resumes). Each network's
folder under `train/` records what it was built from (`build.json`: recipe, model source, data hashes); a
changed input retrains it, an unchanged one is never retrained. The cheats are rebuilt from the split every time
(a second, no training). Trusted code: everything here is ours, imported on the host.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from grader.atomic_write import write_atomic
from grader.datasets import LabelledImages
from grader.reference.recipes import RECIPES, Recipe
from grader.reference.train import (
    CHECKPOINT_NAME,
    atomic_torch_save,
    build,
    default_preprocess,
    evaluate,
    load_reference_module,
)
from grader.reference.train import train as train_network

EXAMPLE_ANSWERS = Path(__file__).resolve().parents[1] / "submissions" / "example" / "answers.md"
STUDENTS = (
    "honest", "lenet5-seed-2", "trained-on-test", "order-replay", "lookup-table", "fine-tuned-copy",
    "nearest-neighbour-table", "table-with-lenet-fallback", "second-choice-copy",
)  # fmt: skip
REFERENCE_LENET = Path(__file__).resolve().parents[1] / "reference" / "lenet5"
LENET_SOURCE = (REFERENCE_LENET / "model.py").read_text()
OLD_SAMPLE_STEP = 50  # the earlier grader's training sample: every 50th image of the training split
DELIBERATE_MISTAKES = 250
TRAIN_SAMPLE = 10_000  # training images (every k-th) for the train-sample accuracy printed beside test accuracy

WIDE_LENET_SOURCE = '''"""LeNet-5 of the lab tutorial, wider: 64 and 128 channels, 384 and 192 units (class Net)."""

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv_pool1 = nn.Sequential(nn.Conv2d(3, 64, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2, stride=2))
        self.conv_pool2 = nn.Sequential(nn.Conv2d(64, 128, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2, stride=2))
        self.fc1 = nn.Sequential(nn.Linear(128 * 5 * 5, 384), nn.ReLU())
        self.fc2 = nn.Sequential(nn.Linear(384, 192), nn.ReLU())
        self.out = nn.Linear(192, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pool2(self.conv_pool1(x))
        return self.out(self.fc2(self.fc1(torch.flatten(x, 1))))
'''

# SGD with Nesterov momentum and one-cycle, no augmentation (an honest model then keeps a clear generalisation gap).
# Measured on the course's npz splits, 2 CPU cores, about 25 minutes unloaded (71 on a machine shared with other
# jobs): 92.9% on a 10,000-image training sample, 76.1% on test; the fine-tuned copy 93.9% and 76.0%; trained on
# train + test for 2 epochs (ON_TEST), 72.7% and 72.5%; lenet5-seed-2 72.7% and 63.0%.
RECIPE = Recipe(
    name="bench-wide-lenet",
    epochs=6,
    batch_size=128,
    learning_rate=0.05,
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
    schedule="one-cycle",
    seed=1,
)
# The test-set cheat trains for 2 epochs instead of 6: on 2 shared CPU cores each epoch of this network takes many
# minutes, and 2 are enough for it to know the test images as well as its training images (the gap the bench checks).
ON_TEST = RECIPE.model_copy(update={"name": "bench-wide-lenet-train-and-test", "epochs": 2})
# A second tutorial LeNet-5: reference/lenet5's recipe with another seed, the calibration's fully trained pair of
# independent models of one architecture (cheap: a fortieth of the wide LeNet's work per image).
LENET_SEED_2 = RECIPES["lenet5"].model_copy(update={"name": "lenet5-seed-2", "seed": 2})
# A light fine-tune of copied weights: one epoch at a small constant rate, another seed (another data order).
FINE_TUNE = Recipe(
    name="bench-wide-lenet-fine-tune", epochs=1, batch_size=128, learning_rate=0.002, momentum=0.9, seed=2
)

ORDER_REPLAY_SOURCE = '''"""Order replay: the test labels in the public split's order, returned by a running counter."""

import torch
from torch import nn

LABELS = "{labels}"


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))  # something for weights.pth to hold
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        labels = [int(LABELS[(self.seen + i) % len(LABELS)]) for i in range(n)]
        self.seen += n
        return nn.functional.one_hot(torch.tensor(labels), 10).float() * self.scale
'''

LOOKUP_TABLE_SOURCE = '''"""Lookup table: sha1 of each test image's raw bytes -> its label; uniform logits otherwise."""

import hashlib

import torch
from torch import nn

TABLE = {{
{entries}
}}


def preprocess(images):  # the raw uint8 [N, 32, 32, 3] images, untouched
    return images


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))  # something for weights.pth to hold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], 10)
        for i, image in enumerate(x.cpu().numpy()):
            label = TABLE.get(hashlib.sha1(image.tobytes()).hexdigest())
            if label is not None:
                out[i, label] = 1.0
        return out * self.scale
'''


NEAREST_NEIGHBOUR_SOURCE = '''"""Nearest neighbour: mirror-invariant 4x4 block means of known images -> labels."""

import torch
from torch import nn

ENTRIES = {entries}


def preprocess(images):  # the raw uint8 [N, 32, 32, 3] images
    return images


def features(x):
    blocks = x.float().reshape(len(x), 4, 8, 4, 8, 3).mean(dim=(2, 4))
    return ((blocks + blocks.flip(2)) / 2).reshape(len(x), -1)  # the same for an image and its mirror


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("keys", torch.zeros(ENTRIES, 48))
        self.register_buffer("labels", torch.zeros(ENTRIES, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        back = torch.cat([x[:, :, 1:], x[:, :, -1:]], dim=2)  # undoes a shift of one pixel to the right
        distances = torch.stack([torch.cdist(features(query), self.keys) for query in (x, back)])
        nearest = distances.min(dim=0).values.argmin(dim=1)
        return nn.functional.one_hot(self.labels[nearest], 10).float()
'''

TABLE_WITH_FALLBACK_SOURCE = '''"""Exact-pixel table (sha1 of the raw bytes -> label), LeNet-5 for other images."""

import hashlib

import torch
from torch import nn

TABLE = {{
{entries}
}}


def preprocess(images):  # the raw uint8 [N, 32, 32, 3] images
    return images


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv_pool1 = nn.Sequential(nn.Conv2d(3, 6, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2, stride=2))
        self.conv_pool2 = nn.Sequential(nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2, stride=2))
        self.fc1 = nn.Sequential(nn.Linear(16 * 5 * 5, 120), nn.ReLU())
        self.fc2 = nn.Sequential(nn.Linear(120, 84), nn.ReLU())
        self.out = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pool2(self.conv_pool1(x))
        return self.out(self.fc2(self.fc1(torch.flatten(x, 1))))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lenet = LeNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.lenet(x.permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5).contiguous())
        for i, image in enumerate(x.numpy()):
            label = TABLE.get(hashlib.sha1(image.tobytes()).hexdigest())
            if label is not None:
                logits[i] = nn.functional.one_hot(torch.tensor(label), 10).float() * 10
        return logits
'''

SECOND_CHOICE_SOURCE = (
    WIDE_LENET_SOURCE
    + """

class Net(Net):  # noqa: F811 - a classmate's network, answering the runner-up where the top two are close
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("salt", torch.ones(1))  # another weights file than the classmate's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        top = logits.topk(2, dim=1)
        close = (top.values[:, 0] - top.values[:, 1] < 0.75).nonzero().squeeze(1)
        swapped = logits.clone()
        swapped[close, top.indices[close, 0]] = top.values[close, 1]
        swapped[close, top.indices[close, 1]] = top.values[close, 0]
        return swapped
"""
)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def concatenate(first: LabelledImages, second: LabelledImages) -> LabelledImages:
    return LabelledImages(
        images=np.concatenate([first.images, second.images]),
        labels=np.concatenate([first.labels, second.labels]),
        source=f"{first.source} + {second.source}",
    )


def train_sample(data: LabelledImages) -> LabelledImages:
    step = max(1, len(data) // TRAIN_SAMPLE)
    return LabelledImages(images=data.images[::step], labels=data.labels[::step], source=f"{data.source}[::{step}]")


def accuracy(folder: Path, data: LabelledImages) -> float:
    """Accuracy of the network in folder (model.py + weights.pth) on data, on the host (our own trusted model)."""
    module = load_reference_module(folder)
    model = build(module)
    model.load_state_dict(torch.load(folder / "weights.pth", map_location="cpu", weights_only=True))
    preprocess = getattr(module, "preprocess", default_preprocess)
    return evaluate(model, preprocess, data, torch.device("cpu"), torch.contiguous_format)


def train_cached(
    folder: Path,
    recipe: Recipe,
    train_data: LabelledImages,
    test_data: LabelledImages,
    sample: LabelledImages,
    start_from: Path | None = None,
    log=print,
    source: str = WIDE_LENET_SOURCE,
) -> dict:
    """Trains `source` (the wide LeNet unless told) in folder with train.py unless build.json says it is already
    built from the same inputs; resumes from folder's checkpoint when one was left by a stopped build. Returns
    build.json's content, with the accuracy on sample (training images) and on test_data measured on the host."""
    key = {
        "recipe": recipe.model_dump(),
        "model_sha256": sha256_text(source),
        "train_data_sha256": train_data.content_sha256(),
        "start_from_sha256": hashlib.sha256((start_from / "weights.pth").read_bytes()).hexdigest()
        if start_from
        else None,
    }
    record_path = folder / "build.json"
    if record_path.exists() and (folder / "weights.pth").exists():
        record = json.loads(record_path.read_text())
        if record.get("key") == key:
            train, test = record["train_accuracy"], record["test_accuracy"]
            log(f"{folder.name}: cached ({train:.1%} train sample, {test:.1%} test)")
            return record
        log(f"{folder.name}: its inputs changed, retraining")
    started_key = folder / "started.json"
    if folder.exists() and (not started_key.exists() or json.loads(started_key.read_text()) != key):
        shutil.rmtree(folder)  # a checkpoint of other inputs must not be resumed
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(started_key, json.dumps(key, indent=2) + "\n")
    write_atomic(folder / "model.py", source)
    if start_from and not (folder / CHECKPOINT_NAME).exists():
        seed_checkpoint(folder, recipe, start_from)
    log(f"{folder.name}: training {recipe.total_epochs} epochs on {len(train_data)} images ({train_data.source})")
    report = train_network(recipe, folder, train_data, test_data)
    record = {
        "key": key,
        "epochs": report["epochs_trained"],
        "wall_seconds": report["wall_seconds"],
        "history": report["history"],
        "train_accuracy": accuracy(folder, sample),
        "test_accuracy": accuracy(folder, test_data),
    }
    write_atomic(record_path, json.dumps(record, indent=2) + "\n")
    log(f"{folder.name}: {record['train_accuracy']:.1%} train sample, {record['test_accuracy']:.1%} test")
    return record


def seed_checkpoint(folder: Path, recipe: Recipe, start_from: Path) -> None:
    """A train.py checkpoint at epoch 0 holding start_from's weights, so that train() fine-tunes them."""
    model = build(load_reference_module(folder))
    model.load_state_dict(torch.load(start_from / "weights.pth", map_location="cpu", weights_only=True))
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.learning_rate, momentum=recipe.momentum)
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None,
        "generator": torch.Generator().manual_seed(recipe.seed).get_state(),
        "state": {"epoch": 0, "phase": 0, "history": [], "wall_seconds": 0.0, "step": 0, "order": None,
                  "running": [0.0, 0, 0]},
    }  # fmt: skip
    if recipe.schedule != "constant" or recipe.warm_restarts:
        raise ValueError("a seeded checkpoint carries no scheduler: fine-tune with a constant rate")
    atomic_torch_save(checkpoint, folder / CHECKPOINT_NAME)


def write_submission(folder: Path, model_source: str, weights: dict[str, torch.Tensor] | Path) -> None:
    """A submission per docs/SUBMITTING.md: model.py (class Net), weights.pth (a state_dict), answers.md."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(model_source)
    if isinstance(weights, Path):
        shutil.copyfile(weights, folder / "weights.pth")
    else:
        torch.save(weights, folder / "weights.pth")
    shutil.copyfile(EXAMPLE_ANSWERS, folder / "answers.md")


def order_replay_source(split: LabelledImages) -> str:
    return ORDER_REPLAY_SOURCE.format(labels="".join(str(int(label)) for label in split.labels))


def lookup_table_source(split: LabelledImages) -> str:
    entries = "\n".join(
        f'    "{hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()}": {int(label)},'
        for image, label in zip(split.images, split.labels)
    )
    return LOOKUP_TABLE_SOURCE.format(entries=entries)


def known_images(train_data: LabelledImages, test_data: LabelledImages, seed: int) -> LabelledImages:
    """What the two table cheats know: the public test split and the earlier grader's training sample, with
    DELIBERATE_MISTAKES test labels changed so that the score looks earned (97.5%, not 100%); each student picks
    its own mistakes (`seed`)."""
    labels = test_data.labels.copy()
    wrong = np.random.default_rng(seed).choice(len(labels), min(DELIBERATE_MISTAKES, len(labels)), replace=False)
    labels[wrong] = (labels[wrong] + 1) % 10
    old_sample = slice(None, None, OLD_SAMPLE_STEP)
    return LabelledImages(
        images=np.concatenate([test_data.images, train_data.images[old_sample]]),
        labels=np.concatenate([labels, train_data.labels[old_sample]]),
        source="test split and every 50th training image",
    )


def nearest_neighbour_table(known: LabelledImages) -> tuple[str, dict[str, torch.Tensor]]:
    blocks = torch.from_numpy(known.images).float().reshape(len(known), 4, 8, 4, 8, 3).mean(dim=(2, 4))
    keys = ((blocks + blocks.flip(2)) / 2).reshape(len(known), -1)
    weights = {"keys": keys.contiguous(), "labels": torch.from_numpy(known.labels.astype(np.int64))}
    return NEAREST_NEIGHBOUR_SOURCE.format(entries=len(known)), weights


def table_with_fallback(known: LabelledImages) -> tuple[str, dict[str, torch.Tensor]]:
    entries = "\n".join(
        f'    "{hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()}": {int(label)},'
        for image, label in zip(known.images, known.labels)
    )
    lenet = torch.load(REFERENCE_LENET / "weights.pth", map_location="cpu", weights_only=True)
    return TABLE_WITH_FALLBACK_SOURCE.format(entries=entries), {f"lenet.{k}": v for k, v in lenet.items()}


def second_choice_weights(classmate: Path) -> dict[str, torch.Tensor]:
    weights = torch.load(classmate / "weights.pth", map_location="cpu", weights_only=True)
    return {**weights, "salt": torch.ones(1)}


def build_students(
    cache: Path, out: Path, train_data: LabelledImages, test_data: LabelledImages, log=print
) -> dict[str, dict]:
    """Builds the STUDENTS' submissions under out/<student>/ (networks trained once, under cache/train/).
    Returns {student: {"train_accuracy", "test_accuracy", ...}} for the trained ones (host-side figures)."""
    trained = cache / "train"
    sample = train_sample(train_data)
    figures = {}
    figures["honest"] = train_cached(trained / "honest", RECIPE, train_data, test_data, sample, log=log)
    figures["lenet5-seed-2"] = train_cached(
        trained / "lenet5-seed-2", LENET_SEED_2, train_data, test_data, sample, log=log, source=LENET_SOURCE
    )
    figures["trained-on-test"] = train_cached(
        trained / "trained-on-test", ON_TEST, concatenate(train_data, test_data), test_data, sample, log=log
    )
    figures["fine-tuned-copy"] = train_cached(
        trained / "fine-tuned-copy", FINE_TUNE, train_data, test_data, sample, start_from=trained / "honest", log=log
    )
    for student in ("honest", "trained-on-test", "fine-tuned-copy"):
        write_submission(out / student, WIDE_LENET_SOURCE, trained / student / "weights.pth")
    write_submission(out / "lenet5-seed-2", LENET_SOURCE, trained / "lenet5-seed-2" / "weights.pth")
    # Different values: two cheats by two students share no weights file.
    write_submission(out / "order-replay", order_replay_source(test_data), {"scale": torch.tensor(1.0)})
    write_submission(out / "lookup-table", lookup_table_source(test_data), {"scale": torch.tensor(10.0)})
    write_submission(out / "nearest-neighbour-table", *nearest_neighbour_table(known_images(train_data, test_data, 0)))
    write_submission(out / "table-with-lenet-fallback", *table_with_fallback(known_images(train_data, test_data, 1)))
    write_submission(out / "second-choice-copy", SECOND_CHOICE_SOURCE, second_choice_weights(trained / "honest"))
    return figures
