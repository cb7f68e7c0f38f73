"""One training loop for every reference network, with checkpoints so that a stopped run resumes."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from grader.atomic_write import write_atomic
from grader.datasets import LabelledImages
from grader.reference.recipes import Recipe

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_EVERY_STEPS = 50


def load_reference_module(folder: Path) -> ModuleType:
    """Our own reference model.py (trusted code), imported the way the sandbox imports a student's."""
    spec = importlib.util.spec_from_file_location(f"reference_{folder.name}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(module: ModuleType) -> torch.nn.Module:
    return module.build_model() if hasattr(module, "build_model") else module.Net()


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 32x32 crop of the image padded by 4 zeros, and a horizontal flip half of the time (uint8 NHWC)."""
    n = len(images)
    padded = F.pad(images.permute(0, 3, 1, 2), (4, 4, 4, 4)).permute(0, 2, 3, 1)
    dy = torch.randint(0, 9, (n,), generator=generator)
    dx = torch.randint(0, 9, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(32))[:, :, None]
    cols = (dx[:, None] + torch.arange(32))[:, None, :]
    crops = padded[torch.arange(n)[:, None, None], rows, cols]
    flip = torch.rand(n, generator=generator) < 0.5
    crops[flip] = crops[flip].flip(2)
    return crops


def evaluate(model, preprocess, data: LabelledImages, device: torch.device, memory_format, batch_size=1000) -> float:
    model.eval()
    images = torch.from_numpy(data.images)
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = preprocess(images[start : start + batch_size]).to(device, memory_format=memory_format)
            correct += (model(x).argmax(1).cpu() == torch.from_numpy(data.labels[start : start + batch_size])).sum()
    return int(correct) / len(images)


def default_preprocess(images: torch.Tensor) -> torch.Tensor:
    """The runner's default, Normalize(0.5, 0.5), which host code may not import from inside the sandbox."""
    return images.permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5).contiguous()


def atomic_torch_save(obj, path: Path) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, temporary)
    os.replace(temporary, path)


def train(recipe: Recipe, folder: Path, train_data: LabelledImages, test_data: LabelledImages) -> dict:
    """Trains reference/<name>/, writing checkpoint.pt every epoch and weights.pth plus training.json at the end."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(recipe.seed)
    module = load_reference_module(folder)
    preprocess = getattr(module, "preprocess", default_preprocess)
    memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model = build(module).to(device, memory_format=memory_format)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=recipe.learning_rate,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
        weight_decay=recipe.weight_decay,
    )
    steps_per_epoch = len(train_data) // recipe.batch_size

    def make_scheduler(phase: int):
        if phase > 0:
            restart = recipe.warm_restarts[phase - 1]
            for group in optimizer.param_groups:
                # OneCycleLR leaves its own initial_lr and a cycled momentum behind: start from the recipe's.
                group.update(lr=restart.learning_rate, initial_lr=restart.learning_rate, momentum=recipe.momentum)
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=restart.epochs * steps_per_epoch)
        if recipe.schedule == "one-cycle":
            return torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=recipe.learning_rate, total_steps=recipe.epochs * steps_per_epoch, pct_start=0.25
            )
        return None

    generator = torch.Generator().manual_seed(recipe.seed)
    # "step", "order" and "running" describe an epoch in progress, so a stop mid-epoch loses little.
    state = {
        "epoch": 0,
        "phase": 0,
        "history": [],
        "wall_seconds": 0.0,
        "step": 0,
        "order": None,
        "running": [0.0, 0, 0],
    }
    checkpoint_path = folder / CHECKPOINT_NAME
    checkpoint = None
    if checkpoint_path.exists():
        checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=False)
        state.update(checkpoint["state"])
    # The scheduler exists before the optimizer's state loads, so the saved learning rates are the ones that stay.
    scheduler = make_scheduler(state["phase"])
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler:
            scheduler.load_state_dict(checkpoint["scheduler"])
        generator.set_state(checkpoint["generator"])

    def save_checkpoint() -> None:
        checkpoint = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler else None,
            "generator": generator.get_state(),
            "state": state,
        }
        atomic_torch_save(checkpoint, checkpoint_path)

    images = torch.from_numpy(train_data.images)
    labels = torch.from_numpy(train_data.labels)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        for epoch in range(state["epoch"] + 1, recipe.total_epochs + 1):
            if (phase := recipe.phase_of(epoch)) != state["phase"]:
                state["phase"] = phase
                scheduler = make_scheduler(phase)
            started = time.perf_counter()
            model.train()
            task = progress.add_task(f"[{epoch}/{recipe.total_epochs}]", total=steps_per_epoch, completed=state["step"])
            if state["order"] is None:
                state["order"] = torch.randperm(len(images), generator=generator)
            order = state["order"]
            total_loss, correct, seen = state["running"]
            for step in range(state["step"], steps_per_epoch):
                index = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
                batch = augment(images[index], generator) if recipe.augment else images[index]
                x = preprocess(batch).to(device, memory_format=memory_format)
                y = labels[index].to(device)
                outputs = model(x)
                loss = F.cross_entropy(outputs, y, label_smoothing=recipe.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler:
                    scheduler.step()
                total_loss += loss.item() * len(y)
                correct += int((outputs.argmax(1) == y).sum())
                seen += len(y)
                progress_so_far = f"Loss: {total_loss / seen:.4f}, Acc: {correct / seen:.4f}"
                description = f"[{epoch}/{recipe.total_epochs}] {progress_so_far}"
                progress.update(task, advance=1, description=description)
                if (step + 1) % CHECKPOINT_EVERY_STEPS == 0:
                    state["wall_seconds"] += time.perf_counter() - started
                    started = time.perf_counter()
                    state["step"], state["running"] = step + 1, [total_loss, correct, seen]
                    save_checkpoint()
            test_accuracy = evaluate(model, preprocess, test_data, device, memory_format)
            progress.update(task, description=f"{description}, Test Acc: {test_accuracy:.4f}")
            state.update(epoch=epoch, step=0, order=None, running=[0.0, 0, 0])
            state["wall_seconds"] += time.perf_counter() - started
            state["history"].append(
                {
                    "epoch": epoch,
                    "train_loss": total_loss / seen,
                    "train_accuracy": correct / seen,
                    "test_accuracy": test_accuracy,
                }
            )
            save_checkpoint()

    model = model.to("cpu", memory_format=torch.contiguous_format)
    atomic_torch_save({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "weights.pth")
    report = {
        "recipe": recipe.model_dump(),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "train_data": {"source": train_data.source, "sha256": train_data.content_sha256(), "images": len(train_data)},
        "epochs_trained": state["epoch"],
        "wall_seconds": round(state["wall_seconds"], 1),
        "history": state["history"],
    }
    write_atomic(folder / "training.json", json.dumps(report, indent=2) + "\n")
    return report
