"""Charts and pictures for the HTML pages: matplotlib figures as inline SVG, test images as inline PNG.

The pages are opened offline and handed to students, so nothing may point outside the file: the SVG is
stripped of its XML prolog, DOCTYPE, metadata and namespace declarations (an HTML parser knows inline SVG
without them), and images are data: URIs.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on a TA's server; the pages only need the rendered file

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

STYLE = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
         "svg.hashsalt": "lab8-grader"}  # fmt: skip
BAR = "#3b6ea8"
MARK = "#c2410c"
BASELINE_STYLES = ("--", ":", "-.")

_PROLOG = re.compile(r"<\?xml[^>]*>|<!DOCTYPE[^>]*>|<metadata>.*?</metadata>", re.DOTALL)
_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')


def figure(width: float, height: float) -> Figure:
    with plt.rc_context(STYLE):
        return Figure(figsize=(width, height), layout="constrained")


def inline_svg(fig: Figure, label: str) -> str:
    """The figure as an <svg> element for an HTML page, labelled for screen readers."""
    buffer = io.StringIO()
    with plt.rc_context(STYLE):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = _NAMESPACES.sub("", _PROLOG.sub("", buffer.getvalue())).strip()
    return svg.replace("<svg", f'<svg role="img" aria-label="{_attribute(label)}" class="chart"', 1)


def _attribute(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def per_class_accuracy(classes: Sequence[str], accuracy: Sequence[float], overall: float | None,
                       baselines: Mapping[str, float]) -> str:  # fmt: skip
    fig = figure(7.2, 2.8)
    axes = fig.add_subplot()
    axes.bar(classes, [value * 100 for value in accuracy], color=BAR)
    if overall is not None:
        axes.axhline(overall * 100, color=MARK, linewidth=1.5, label=f"your accuracy {overall:.1%}")
    for (name, value), style in zip(sorted(baselines.items()), _cycle(BASELINE_STYLES)):
        axes.axhline(value * 100, color="#555555", linestyle=style, linewidth=1, label=f"{name} {value:.1%}")
    axes.set_ylim(0, 100)
    axes.set_ylabel("accuracy (%)")
    axes.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    if overall is not None or baselines:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
    return inline_svg(fig, "Accuracy on each class")


def confusion_heatmap(classes: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    counts = np.asarray(matrix, dtype=float)
    fig = figure(5.6, 4.8)
    axes = fig.add_subplot()
    shown = axes.imshow(counts, cmap="Blues")
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.spines[:].set_visible(False)
    threshold = counts.max() / 2 if counts.size else 0
    for (row, column), value in np.ndenumerate(counts):
        if value:
            axes.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=7,
                      color="white" if value > threshold else "black")  # fmt: skip
    scale = fig.colorbar(shown, ax=axes, shrink=0.8, label="test images")
    scale.locator = MaxNLocator(integer=True)
    return inline_svg(fig, "Confusion matrix: true class by row, predicted class by column")


def distribution(values: Sequence[float], marks: Mapping[str, float], *, xlabel: str, label: str,
                 bins: int = 20, scale: float = 1.0) -> str:  # fmt: skip
    """A histogram of the class with each mark (a baseline) drawn as a labelled vertical line."""
    fig = figure(7.2, 2.6)
    axes = fig.add_subplot()
    if values:
        axes.hist([value * scale for value in values], bins=bins, color=BAR, edgecolor="white")
    for (name, value), style in zip(sorted(marks.items()), _cycle(BASELINE_STYLES)):
        axes.axvline(value * scale, color=MARK, linestyle=style, linewidth=1.5, label=name)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("students")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    if marks:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
    return inline_svg(fig, label)


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 HxWx3 image as a data: URI (no file beside the page, no fetch)."""
    buffer = io.BytesIO()
    plt.imsave(buffer, np.ascontiguousarray(image), format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _cycle(items: Sequence[str]):
    while True:
        yield from items
