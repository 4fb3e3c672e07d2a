"""Matplotlib on the Agg backend: figure sizes, each method's label and colour, shared drawing helpers."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .stats import mean_curve  # noqa: E402

FIGSIZE, WIDE, DPI = (6.0, 4.0), (8.0, 3.6), 120
LABELS = {"base": "base", "grpo": "GRPO", "sft": "SFT", "grpo_d": "GRPO-D"}
COLORS = {"base": "gray", "grpo": "tab:blue", "sft": "tab:orange", "grpo_d": "tab:green"}


def new_figure(ncols: int = 1):
    fig, axes = plt.subplots(1, ncols, figsize=FIGSIZE if ncols == 1 else WIDE, dpi=DPI, squeeze=False,
                             layout="constrained")
    return fig, list(axes[0])


def note_box(ax, text: str) -> None:
    ax.text(0.02, 0.02, text, transform=ax.transAxes, fontsize=7, va="bottom",
            bbox=dict(boxstyle="round", facecolor="lightyellow", alpha=0.8))


def plot_mean(ax, curves, label: str, scale: float = 1.0, **style) -> None:
    x, m, s = mean_curve(curves)
    (line,) = ax.plot(x, m * scale, label=label, **style)
    if len(curves) > 1:
        ax.fill_between(x, (m - s) * scale, (m + s) * scale, color=line.get_color(), alpha=0.2)
