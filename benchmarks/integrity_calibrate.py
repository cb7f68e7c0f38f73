"""Calibrate the copied-model rule on real models' predictions.

    python -m benchmarks.integrity_calibrate --predictions ../shared/data/cifar10/reference_predictions \\
        --labels ../shared/data/cifar10/test.npz [--honest DIR ...] [--copy A.json B.json ...]

--predictions and --honest: folders of independently trained models' predictions (`*_predictions.json`, a
JSON list of the predicted class of each test image in the labels' order): every pair among them must come
out clean. --copy: a pair that must be flagged (a model and its copy fine-tuned for an epoch). Prints the
largest kappa, agreement and shared-mistake agreement over the independent pairs, the pairs nearest each
threshold, and what the rule flags; exits 1 when it flags an independent pair or misses a copy. The rule's
thresholds are IntegritySettings' defaults unless --kappa, --kappa-high, --kappa-accuracy,
--mistake-agreement or --min-shared-mistakes try others.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import click
import numpy as np

from grader.integrity.copies import PairMetrics, consistent_errors, kappa_bar, pair_metrics, rule_text
from grader.integrity.model import IntegritySettings

SUFFIX = "_predictions.json"
SHOWN = 5


def model_name(path: Path) -> str:
    return path.name.removesuffix(SUFFIX)


def read_predictions(path: Path) -> np.ndarray:
    return np.asarray(json.loads(Path(path).read_text()), dtype=np.uint8)


def load_predictions(folder: Path) -> dict[str, np.ndarray]:
    return {model_name(path): read_predictions(path) for path in sorted(Path(folder).glob(f"*{SUFFIX}"))}


def _figures(metrics: PairMetrics, bars: np.ndarray, i: int, j: int) -> str:
    return (
        f"kappa {metrics.kappa[i, j]:.3f} (bar {bars[i, j]:.3f})  agreement {metrics.agreement[i, j]:.2%}  "
        f"same wrong class {metrics.shared_mistake_agreement[i, j]:.1%} of {metrics.shared_mistakes[i, j]}  "
        f"accuracy {metrics.accuracy[i]:.2%} / {metrics.accuracy[j]:.2%}"
    )


def _report_independent(names, groups, metrics, bars, flags) -> int:
    """Figures over every pair of independent models; the number the rule flags (it must be none)."""
    pairs = list(combinations(range(len(names)), 2))
    print(f"independent pairs: {len(pairs)}")
    for group in sorted(set(groups)):
        within = [(i, j) for i, j in pairs if groups[i] == groups[j] == group]
        if within:
            print(f"  within {group} ({len(within)} pairs): " + _maxima(metrics, within))
    across = [(i, j) for i, j in pairs if groups[i] != groups[j]]
    if across:
        print(f"  across folders ({len(across)} pairs): " + _maxima(metrics, across))
    for label, table in (
        ("kappa", metrics.kappa),
        ("agreement", metrics.agreement),
        ("same wrong class", metrics.shared_mistake_agreement),
    ):
        print(f"most alike by {label}:")
        for i, j in sorted(pairs, key=lambda pair: -np.nan_to_num(table[pair]))[:SHOWN]:
            print(f"  {names[i]} ~ {names[j]}: {_figures(metrics, bars, i, j)}")
    flagged = [(i, j) for i, j in pairs if flags[i, j]]
    print(f"flagged by the rule: {len(flagged)} (must be 0)")
    for i, j in flagged:
        print(f"  FLAGGED {names[i]} ~ {names[j]}: {_figures(metrics, bars, i, j)}")
    return len(flagged)


def _maxima(metrics: PairMetrics, pairs: list[tuple[int, int]]) -> str:
    index = tuple(np.array(pairs).T)
    return (
        f"max kappa {np.nanmax(metrics.kappa[index]):.3f}, max agreement {np.max(metrics.agreement[index]):.2%}, "
        f"max same wrong class {np.nanmax(metrics.shared_mistake_agreement[index]):.1%}"
    )


DEFAULTS = IntegritySettings()
FilePath = click.Path(path_type=Path)


@click.command(help=__doc__.splitlines()[0])
@click.option("--predictions", type=FilePath, required=True, help="published models' *_predictions.json")
@click.option("--labels", type=FilePath, required=True, help="the split (.npz with `labels`) they predict")
@click.option("--honest", type=FilePath, multiple=True, help="more independent models")
@click.option("--copy", type=(FilePath, FilePath), multiple=True, help="two prediction files that must be flagged")
@click.option("--kappa", type=float, default=DEFAULTS.copy_kappa)
@click.option("--kappa-high", type=float, default=DEFAULTS.copy_kappa_high)
@click.option("--kappa-accuracy", type=(float, float), default=DEFAULTS.copy_kappa_accuracy)
@click.option("--mistake-agreement", type=float, default=DEFAULTS.copy_mistake_agreement)
@click.option("--min-shared-mistakes", type=int, default=DEFAULTS.copy_min_shared_mistakes)
def main(**options) -> None:
    click.get_current_context().exit(calibrate(SimpleNamespace(**options)))


def calibrate(args: SimpleNamespace) -> int:
    settings = IntegritySettings.model_validate(
        DEFAULTS.model_dump()
        | {
            "copy_kappa": args.kappa,
            "copy_kappa_high": args.kappa_high,
            "copy_kappa_accuracy": tuple(args.kappa_accuracy),
            "copy_mistake_agreement": args.mistake_agreement,
            "copy_min_shared_mistakes": args.min_shared_mistakes,
        }
    )
    with np.load(args.labels, allow_pickle=False) as split:
        labels = split["labels"].astype(np.uint8)
    independent: dict[str, np.ndarray] = {}
    groups: list[str] = []
    for folder in (args.predictions, *args.honest):
        found = load_predictions(folder)
        independent |= found
        groups += [folder.name] * len(found)
    models = dict(independent)  # then the copies, after the independent models
    for path in (path for pair in args.copy for path in pair):
        models.setdefault(model_name(path), read_predictions(path))
    everyone = list(models)
    metrics = pair_metrics(np.stack(list(models.values())), labels)
    bars = kappa_bar(metrics, settings)
    flags = consistent_errors(metrics, settings) | (metrics.agreement == 1)
    print(f"rule: {rule_text(settings)}")
    wrong = _report_independent(list(independent), groups, metrics, bars, flags)
    print(f"copies (must be flagged): {len(args.copy)}")
    for a, b in ((model_name(a), model_name(b)) for a, b in args.copy):
        i, j = everyone.index(a), everyone.index(b)
        verdict = "flagged" if flags[i, j] else "MISSED"
        wrong += not flags[i, j]
        print(f"  {verdict} {a} ~ {b}: {_figures(metrics, bars, i, j)}")
    return 1 if wrong else 0


if __name__ == "__main__":
    main()
