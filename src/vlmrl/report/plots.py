"""Matplotlib on the Agg backend: figure sizes, each method's label and colour, shared drawing helpers."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import numpy as np  # noqa: E402

from .stats import mean_curve  # noqa: E402

FIGSIZE, WIDE, DPI = (6.0, 4.0), (8.0, 3.6), 120
LABELS = {"base": "base", "grpo": "GRPO", "sft": "SFT", "grpo_d": "GRPO-D"}
COLORS = {"base": "gray", "grpo": "tab:blue", "sft": "tab:orange", "grpo_d": "tab:green"}


def new_figure(ncols: int = 1):
    size = FIGSIZE if ncols == 1 else (max(WIDE[0], 2.4 * ncols), WIDE[1])   # four panels or more: 2.4 in each
    fig, axes = plt.subplots(1, ncols, figsize=size, dpi=DPI, squeeze=False, layout="constrained")
    return fig, list(axes[0])


BAND = "band: ±2 SE over seeds"


def plot_mean(ax, curves, label: str, scale: float = 1.0, **style):
    """The seeds' mean curve and a ±2 standard-error band (SE = std / sqrt(seeds at that point)) -> the line."""
    x, m, s = mean_curve(curves)
    (line,) = ax.plot(x, m * scale, label=label, **style)
    if len(curves) > 1:
        se = 2 * s / np.sqrt(len(curves))
        ax.fill_between(x, (m - se) * scale, (m + se) * scale, color=line.get_color(), alpha=0.2, lw=0)
    return line


def interval_bars(ax, xs, cells, label: str, **style):
    """Points at each cell's mean with its 95% interval as error bars; cells: [(mean, lo, hi, seeds)]."""
    means = np.array([c[0] for c in cells], float)
    err = np.array([[m - c[1] for m, c in zip(means, cells)], [c[2] - m for m, c in zip(means, cells)]])
    return ax.errorbar(xs, means, yerr=np.nan_to_num(err), marker="o", capsize=3, label=label, **style)


def percent_axis(ax, lo: float | None = None, hi: float | None = None, noise: float = 0.0) -> None:
    """Keep an accuracy axis (%) within 0-100: [lo - noise, hi + noise] when given (a flat result then stays
    flat against its noise scale), else the autoscaled range, clipped either way."""
    auto_lo, auto_hi = ax.get_ylim()
    lo = auto_lo if lo is None or lo != lo else lo - noise
    hi = auto_hi if hi is None or hi != hi else hi + noise
    ax.set_ylim(max(0.0, lo), min(100.0, hi))
