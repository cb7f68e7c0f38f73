"""Turns what the sandbox reported into advice: the runner's diagnostics, the error, the confusion matrix.

The runner's --diagnose findings arrive as typed fields (RunInfo.diagnostics). The normalisation probe
carries predictions on a fixed sample of the images (every step-th one), which only the host can score,
since the labels never enter the sandbox.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from grader.check.file_checks import SAVE_STATE_DICT, unreadable_weights_finding
from grader.check.findings import Finding
from grader.datasets import CIFAR10_CLASSES
from grader.results.model import Result
from grader.sandbox.protocol import Diagnostics, NormalisationProbe, RunWarning, warning_words

PointsOf = Callable[[float], float]  # an accuracy to Exercise 1's points under the rubric
NORMALISATIONS = {
    "unit": ("inputs in [0, 1] (ToTensor() without Normalize)", None),
    "half": ("Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))", ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))),
    "cifar": ("CIFAR-10 mean/std normalisation", ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))),
    "imagenet": ("ImageNet mean/std normalisation", ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))),
}
NORMALISATION_POINTS = 5.0  # Exercise 1 points an alternative normalisation must win to be worth a warning
CLASS_ORDER_GAIN = 0.2  # relabelling must win 20 points of accuracy, and reach 40%
CLASS_ORDER_FLOOR = 0.4
SHAPE_ERRORS = ("shapes cannot be multiplied", "channels", "size mismatch", "Expected input", "view size", "shape")


def interpret(result: Result, labels: np.ndarray, custom_preprocess: bool, points_of: PointsOf) -> list[Finding]:
    """Advice from one graded (or failed) run of the check; `labels` are those of the images run."""
    run = result.run
    findings = [_from_warning(warning) for warning in (run.warnings if run else [])]
    if run and run.diagnostics:
        failed = result.error_kind == "forward"
        findings += diagnostic_findings(run.diagnostics, labels, custom_preprocess, failed, points_of)
    if result.confusion_matrix:
        findings += class_order_findings(np.asarray(result.confusion_matrix), points_of)
    findings += weights_error_findings(result)
    shape_error = any(marker in (result.error or "") for marker in SHAPE_ERRORS)
    if result.error_kind == "forward" and shape_error and not any(f.code == "input-size" for f in findings):
        findings.append(_input_size_finding([]))
    return findings


def _from_warning(warning: RunWarning) -> Finding:
    if warning.code == "whole-model":
        return Finding(
            level="warning",
            code="whole-model",
            message="weights.pth holds your whole pickled model, not its state_dict. It loads today only because "
            "model.py defines the same class under the same name; it breaks as soon as the class moves or changes",
            hint=f"After training, save the parameters only:\n    {SAVE_STATE_DICT}\n"
            "and keep the class (Net or build_model) in model.py.",
        )
    level = "info" if warning.code == "dataparallel" else "warning"
    return Finding(level=level, code=warning.code, message=warning_words(warning))


def diagnostic_findings(
    found: Diagnostics, labels: np.ndarray, custom: bool, forward_failed: bool, points_of: PointsOf
) -> Iterator[Finding]:
    """What each of the runner's findings means for the student, with the fix."""
    if found.batchnorm_init:
        yield Finding(
            level="warning",
            code="batchnorm-init",
            message=f"BatchNorm {', '.join(found.batchnorm_init)} still hold their initial running statistics "
            "(mean 0, variance 1). The grader calls model.eval(), which normalises with these statistics, not your "
            "data's",
            hint="Were the weights saved before training, or from a fresh model? Train with model.train(), then "
            f"save the trained model: {SAVE_STATE_DICT}",
        )
    if found.train_mode:
        yield Finding(
            level="warning",
            code="train-mode",
            message=f"modules in training mode after model.eval(): {', '.join(found.train_mode)}. The grader calls "
            "model.eval() once; something (self.train() in forward(), or an override of eval()/train()) switches "
            "BatchNorm/Dropout back to training behaviour",
            hint="Remove self.train() from forward(); let the caller choose the mode.",
        )
    if found.random:
        yield Finding(
            level="warning",
            code="dropout-active",
            message="two identical passes in eval mode gave different outputs: Dropout (or other randomness) stays "
            "active at inference, so your accuracy changes from run to run",
            hint="Use nn.Dropout modules, or F.dropout(x, p, training=self.training): plain F.dropout(x, p) "
            "drops units even after model.eval().",
        )
    if found.batch_stats:
        yield Finding(
            level="warning",
            code="batchnorm-training",
            message="an image's output changes with the other images in its batch: BatchNorm normalises with "
            "batch statistics at inference (training mode), so the grader's batch size changes your accuracy",
            hint="Use nn.BatchNorm2d modules and let model.eval() switch them; never pass training=True to "
            "F.batch_norm.",
        )
    if found.input_shapes is not None and forward_failed:
        yield _input_size_finding(found.input_shapes)
    if found.normalisation and (hit := normalisation_finding(found.normalisation, labels, custom, points_of)):
        yield hit
    if found.skipped:
        yield Finding(
            level="info", code="diagnostics-skipped", message=f"the extra checks stopped early: {found.skipped}"
        )


def _input_size_finding(fits: list[tuple[int, int, int]]) -> Finding:
    runs = ""
    if fits:
        shapes = " and ".join(f"[N, {c}, {h}, {w}]" for c, h, w in fits)
        runs = f" Your model does run on {shapes} input"
        if any(shape[1:] == (28, 28) for shape in fits):
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


def normalisation_finding(
    probe: NormalisationProbe, labels: np.ndarray, custom_preprocess: bool, points_of: PointsOf
) -> Finding | None:
    """A warning when a standard normalisation would earn NORMALISATION_POINTS more of Exercise 1 than the
    submission as it is, on the probe's images; `points_of` maps an accuracy to the rubric's points.

    The gain must also be more than the sample's noise: among the images the two runs disagree on, the
    alternative must win clearly more (a paired sign test at about two standard deviations).
    """
    sample = np.asarray(labels)[:: probe.step][: len(probe.used)]
    digits = probe.model_dump(exclude={"step"})
    predictions = {name: np.frombuffer(p.encode(), dtype=np.uint8) - ord("0") for name, p in digits.items()}
    if not len(sample) or any(len(p) != len(sample) for p in predictions.values()):
        return None
    right = {name: p == sample for name, p in predictions.items()}
    used_right = right.pop("used")
    used, used_points = float(used_right.mean()), points_of(float(used_right.mean()))
    gains = {name: points_of(float(hits.mean())) - used_points for name, hits in right.items()}
    best = max(gains, key=lambda name: (gains[name], float(right[name].mean())))
    won, lost = int((right[best] & ~used_right).sum()), int((used_right & ~right[best]).sum())
    if gains[best] < NORMALISATION_POINTS or won - lost <= 2 * math.sqrt(won + lost):
        return None
    accuracy = float(right[best].mean())
    grader_used = "your preprocess()" if custom_preprocess else NORMALISATIONS["half"][0] + ", the default"
    return Finding(
        level="warning",
        code="normalisation",
        message=f"on {len(sample)} test images your model scores {used:.1%} ({used_points:g} points) as submitted "
        f"({grader_used}); with {NORMALISATIONS[best][0]} it scores {accuracy:.1%} "
        f"({points_of(accuracy):g} points, +{gains[best]:g}): add a preprocess function (see STUDENTS.md)",
        hint="Define in model.py the preprocessing you trained with, e.g.\n" + preprocess_snippet(best),
        points_lost=gains[best],
        fix="add preprocess",
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


def class_order_findings(confusion: np.ndarray, points_of: PointsOf) -> list[Finding]:
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
            points_lost=points_of(relabelled) - points_of(accuracy),
            fix="put the outputs in CIFAR-10's class order",
        )
    ]


WEIGHTS_KEYS_HINT = (
    "weights.pth must be the state_dict of the very model that model.py builds: the same layer names (the "
    "attribute names in __init__) and the same sizes. Missing and unexpected names that differ only by their "
    "start (e.g. 'net.fc' against 'fc') mean a wrapper: save the inner model's state_dict. Wrong shapes mean "
    "model.py builds other layer sizes than the model you trained. Save again with\n    " + SAVE_STATE_DICT
)


def weights_error_findings(result: Result) -> list[Finding]:
    """What to do when loading the weights failed; the error itself is printed as the grading error."""
    if result.error_kind != "weights":
        return []
    error = result.error or ""
    if "does not fit the model" in error:
        message = "the names or shapes of the tensors in the weights file differ from those of the model in model.py"
        return [Finding(level="error", code="weights-keys", message=message, hint=WEIGHTS_KEYS_HINT)]
    if "whole pickled model" in error:
        message = "the weights file holds a whole pickled model whose class is not in model.py under the same name"
        hint = (
            f"Save the parameters only:\n    {SAVE_STATE_DICT}\nand define the class (Net or build_model) in model.py"
        )
        return [Finding(level="error", code="whole-model", message=message, hint=hint)]
    if "cannot be read" in error or "not a readable" in error:
        return [unreadable_weights_finding(result.files.get("weights") or "the weights file")]
    return []
