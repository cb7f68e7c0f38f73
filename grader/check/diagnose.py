"""Turns what the sandbox reported into advice: the runner's diagnostics, the error, the confusion matrix.

The runner's --diagnose lines start with "diagnose-". The normalisation line carries predictions on
a fixed sample of the images (every step-th one), which only the host can score, since the labels
never enter the sandbox.
"""

from __future__ import annotations

import re

import numpy as np

from grader.check.findings import Finding
from grader.datasets import CIFAR10_CLASSES
from grader.results.model import Result

SAVE_STATE_DICT = 'torch.save(model.state_dict(), "weights.pth")'
NORMALISATIONS = {
    "unit": ("inputs in [0, 1] (ToTensor() without Normalize)", None),
    "half": ("Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))", ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))),
    "cifar": ("CIFAR-10's mean and std", ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))),
    "imagenet": ("ImageNet's mean and std", ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))),
}
NORMALISATION_GAIN = 0.2  # an alternative must beat what the grader used by 20 points of accuracy
CLASS_ORDER_GAIN = 0.2  # relabelling must win 20 points of accuracy, and reach 40%
CLASS_ORDER_FLOOR = 0.4
SHAPE_ERRORS = ("shapes cannot be multiplied", "channels", "size mismatch", "Expected input", "view size", "shape")


def interpret(result: Result, labels: np.ndarray, custom_preprocess: bool) -> list[Finding]:
    """Advice from one graded (or failed) run of the check; `labels` are those of the images run."""
    findings: list[Finding] = []
    for warning in result.run.warnings if result.run else []:
        finding = _from_warning(warning, labels, custom_preprocess, result)
        if finding:
            findings.append(finding)
    if result.confusion_matrix:
        findings += class_order_findings(np.asarray(result.confusion_matrix))
    shape_error = any(marker in (result.error or "") for marker in SHAPE_ERRORS)
    if result.error_kind == "forward" and shape_error and not any(f.code == "input-size" for f in findings):
        findings.append(_input_size_finding([]))
    return findings


def _from_warning(warning: str, labels: np.ndarray, custom: bool, result: Result) -> Finding | None:
    topic, _, detail = warning.partition(":")
    detail = detail.strip()
    if topic == "whole-model":
        return Finding(
            level="warning",
            code="whole-model",
            message="weights.pth holds your whole pickled model, not its state_dict. It loads today only because "
            "model.py defines the same class under the same name; it breaks as soon as the class moves or changes",
            hint=f"After training, save the parameters only:\n    {SAVE_STATE_DICT}\n"
            "and keep the class (Net or build_model) in model.py.",
        )
    if topic == "dataparallel":
        return Finding(level="info", code="dataparallel", message=detail)
    if topic == "diagnose-batchnorm-init":
        return Finding(
            level="warning",
            code="batchnorm-init",
            message=f"BatchNorm {detail.removeprefix('running statistics never updated in ')} still hold their "
            "initial running statistics (mean 0, variance 1). The grader calls model.eval(), which normalises "
            "with these statistics, not your data's",
            hint="Were the weights saved before training, or from a fresh model? Train with model.train(), then "
            f"save the trained model: {SAVE_STATE_DICT}",
        )
    if topic == "diagnose-train-mode":
        return Finding(
            level="warning",
            code="train-mode",
            message=f"{detail}. The grader calls model.eval() once; something (self.train() in forward(), or an "
            "override of eval()/train()) switches BatchNorm/Dropout back to training behaviour",
            hint="Remove self.train() from forward(); let the caller choose the mode.",
        )
    if topic == "diagnose-random":
        return Finding(
            level="warning",
            code="dropout-active",
            message="two identical passes in eval mode gave different outputs: Dropout (or other randomness) stays "
            "active at inference, so your accuracy changes from run to run",
            hint="Use nn.Dropout modules, or F.dropout(x, p, training=self.training): plain F.dropout(x, p) "
            "drops units even after model.eval().",
        )
    if topic == "diagnose-batch-stats":
        return Finding(
            level="warning",
            code="batchnorm-training",
            message="an image's output changes with the other images in its batch: BatchNorm normalises with "
            "batch statistics at inference (training mode), so the grader's batch size changes your accuracy",
            hint="Use nn.BatchNorm2d modules and let model.eval() switch them; never pass training=True to "
            "F.batch_norm.",
        )
    if topic == "diagnose-input-size" and result.error_kind == "forward":
        return _input_size_finding([shape for shape in re.findall(r"\d+x\d+x\d+", detail)])
    if topic == "diagnose-normalisation":
        return normalisation_finding(detail, labels, custom)
    if topic == "diagnose-skipped":
        return Finding(level="info", code="diagnostics-skipped", message=f"the extra checks stopped early: {detail}")
    if topic.startswith("diagnose"):
        return None
    return Finding(level="warning", code=topic.strip() or "sandbox", message=warning)


def _input_size_finding(fits: list[str]) -> Finding:
    runs = ""
    if fits:
        shapes = " and ".join("[N, " + shape.replace("x", ", ") + "]" for shape in fits)
        runs = f" Your model does run on {shapes} input"
        if any(s.endswith("28x28") for s in fits):
            runs += ": it was built for 28x28 MNIST images."
        else:
            runs += "."
    return Finding(
        level="error",
        code="input-size",
        message="the model fails on CIFAR-10's input, a batch of [N, 3, 32, 32] colour images." + runs,
        hint="The first layer must take 3 channels (nn.Conv2d(3, ...)), and the first nn.Linear after the "
        "convolutions must match 32x32 input: for the tutorial's LeNet, 16 * 5 * 5 features (28x28 gives 16 * 4 * 4).",
    )


def parse_normalisation_line(detail: str) -> tuple[int, dict[str, np.ndarray]] | None:
    fields = dict(part.split("=", 1) for part in detail.split() if "=" in part)
    try:
        step = int(fields.pop("step"))
    except (KeyError, ValueError):
        return None
    predictions = {}
    for name, digits in fields.items():
        if not re.fullmatch(r"\d*", digits):
            return None
        predictions[name] = np.frombuffer(digits.encode(), dtype=np.uint8) - ord("0")
    lengths = {len(p) for p in predictions.values()}
    if step < 1 or "used" not in predictions or len(lengths) != 1 or not lengths.pop():
        return None
    return step, predictions


def normalisation_finding(detail: str, labels: np.ndarray, custom_preprocess: bool) -> Finding | None:
    parsed = parse_normalisation_line(detail)
    if parsed is None:
        return None
    step, predictions = parsed
    sample = np.asarray(labels)[::step][: len(predictions["used"])]
    if len(sample) != len(predictions["used"]):
        return None
    accuracy = {name: float((p == sample).mean()) for name, p in predictions.items()}
    used = accuracy.pop("used")
    best = max(accuracy, key=accuracy.get)
    if accuracy[best] < used + NORMALISATION_GAIN:
        return None
    grader_used = "your preprocess()" if custom_preprocess else NORMALISATIONS["half"][0] + " (the default)"
    return Finding(
        level="warning",
        code="normalisation",
        message=f"on {len(sample)} test images your model scores {used:.0%} with {grader_used}, but "
        f"{accuracy[best]:.0%} with {NORMALISATIONS[best][0]}: the grader does not normalise the images the "
        "way you did in training",
        hint="Define in model.py the preprocessing you trained with, e.g.\n" + preprocess_snippet(best),
    )


def preprocess_snippet(name: str) -> str:
    stats = NORMALISATIONS[name][1]
    lines = [
        "def preprocess(images):  # uint8 [N, 32, 32, 3] -> float [N, 3, 32, 32]",
        "    x = images.permute(0, 3, 1, 2).float() / 255",
    ]
    if stats:
        lines += [
            f"    mean = torch.tensor({stats[0]}).view(1, 3, 1, 1)",
            f"    std = torch.tensor({stats[1]}).view(1, 3, 1, 1)",
            "    x = (x - mean) / std",
        ]
    lines.append("    return x")
    return "\n".join("    " + line for line in lines)


def best_relabelling(confusion: np.ndarray) -> tuple[dict[int, int], float]:
    """Greedy one-to-one map from predicted to true class, taking the largest cells first."""
    remaining = confusion.astype(float).copy()
    mapping: dict[int, int] = {}
    for _ in range(len(confusion)):
        true, predicted = np.unravel_index(np.argmax(remaining), remaining.shape)
        mapping[int(predicted)] = int(true)
        remaining[true, :] = -1
        remaining[:, predicted] = -1
    total = confusion.sum()
    hits = sum(confusion[true, predicted] for predicted, true in mapping.items())
    return mapping, float(hits / total) if total else 0.0


def class_order_findings(confusion: np.ndarray) -> list[Finding]:
    total = confusion.sum()
    if not total:
        return []
    accuracy = float(np.trace(confusion) / total)
    mapping, relabelled = best_relabelling(confusion)
    if relabelled < max(accuracy + CLASS_ORDER_GAIN, CLASS_ORDER_FLOOR):
        return []
    moved = [f"output {p} ({CIFAR10_CLASSES[p]}) is really {CIFAR10_CLASSES[t]}" for p, t in mapping.items() if p != t]
    order = ", ".join(f"{index} {name}" for index, name in enumerate(CIFAR10_CLASSES))
    return [
        Finding(
            level="warning",
            code="class-order",
            message=f"your class order differs from CIFAR-10's: {'; '.join(moved[:6])}"
            f"{' ...' if len(moved) > 6 else ''}. Put in CIFAR-10's order, the accuracy would be "
            f"{relabelled:.0%} instead of {accuracy:.0%}",
            hint=f"Output i must be the score of CIFAR-10 class i: {order} (torchvision's CIFAR10 labels). "
            "Train with those labels, or reorder the rows of your last layer's weight and bias.",
        )
    ]
