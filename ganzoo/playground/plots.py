"""The study's figures, drawn like the paper's Figures 2 and 3 (matplotlib, Agg backend).

matplotlib is imported only when a figure is drawn, so ``import ganzoo`` stays light. Figures
are saved without a creation date, so the same numbers give the same PNG bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganzoo._io import atomic_path

# Colours of the authors' notebook: target in blue, sources in green/orange, samples in gold.
_COLORS = {"target": "tab:blue", "source_one": "tab:green", "source_two": "tab:orange", "generated": "gold"}
_PNG_METADATA = {"Software": None}   # no matplotlib version stamp: bytes depend on data only


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata=_PNG_METADATA)


def _scatter(ax, points: np.ndarray, color: str, label: str, alpha: float = 0.25, size: float = 4) -> None:
    ax.scatter(points[:, 0], points[:, 1], s=size, alpha=alpha, color=color, label=label, linewidths=0)


def plot_figure2(samples: dict, figure2: dict, path: Path, title: str = "") -> None:
    """Figure 2: the distributions, the pretrained generators and the three finetuned ones.

    Args:
        samples: point clouds from :class:`~ganzoo.playground.study.SeedResult.samples`.
        figure2: the seed's Figure 2 metrics (for the W1 in the titles).
        path: PNG to write (atomically).
        title: figure title.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 6, figsize=(24, 4.4))
    panels = [
        ("source and target", [("source_one", "source_one", "Source-I"), ("source_two", "source_two", "Source-II"),
                               ("target", "target", "target")]),
        ("pretrained on Source-I", [("source_one", "source_one", "Source-I"),
                                    ("pretrained_source_one", "generated", "generated")]),
        ("pretrained on Source-II", [("source_two", "source_two", "Source-II"),
                                     ("pretrained_source_two", "generated", "generated")]),
    ]
    for name, label in (("source_one", "from Source-I"), ("source_two", "from Source-II"), ("random", "from random init")):
        w1 = figure2[name]["w1_final"]
        panels.append((f"finetuned {label}\nW1 = {w1:.2f}, modes {figure2[name]['modes_covered']}/10",
                       [("target", "target", "target"), (f"finetuned_{name}", "generated", "generated")]))
    for ax, (panel_title, layers) in zip(axes, panels):
        for key, color, label in layers:
            _scatter(ax, samples[key], _COLORS[color], label, alpha=0.5 if color == "generated" else 0.25)
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlim(-32, 32)
        ax.set_ylim(-32, 32)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=7, markerscale=3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_figure3(figure3: dict, path: Path, w1_key: str = "w1_final", title: str = "") -> None:
    """Figure 3: recall, gradient similarity and W1 after finetuning of every Source-I
    checkpoint, coloured by W1 (``jet_r``, as the authors plot it).

    Args:
        figure3: the seed's Figure 3 data.
        path: PNG to write (atomically).
        w1_key: ``w1_final`` or ``w1_best``.
        title: figure title.
    """
    plt = _pyplot()
    import matplotlib as mpl

    recall = np.asarray(figure3["recall"], dtype=float)
    grad = np.asarray(figure3["grad_similarity"], dtype=float)
    w1 = np.asarray(figure3[w1_key], dtype=float)
    norm = mpl.colors.Normalize(vmin=float(w1.min()), vmax=float(w1.max()))
    cmap = mpl.colormaps["jet_r"]
    colors = cmap(norm(w1))
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), gridspec_kw={"width_ratios": [20, 20, 20, 1]})
    pearson = figure3["pearson"]
    suffix = "w1_final" if w1_key == "w1_final" else "w1_best"
    panels = [
        (grad, recall, r"$\nabla D$ similarity", "recall", pearson["grad_similarity_vs_recall"]["r"]),
        (grad, w1, r"$\nabla D$ similarity", "$W_1$ after finetuning", pearson[f"grad_similarity_vs_{suffix}"]["r"]),
        (recall, w1, "recall", "$W_1$ after finetuning", pearson[f"recall_vs_{suffix}"]["r"]),
    ]
    for ax, (x, y, xlabel, ylabel, r) in zip(axes[:3], panels):
        ax.scatter(x, y, c=colors, s=27)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title("Pearson r = " + ("n/a" if r is None else f"{r:.2f}"), fontsize=10)
        ax.grid(alpha=0.3)
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), cax=axes[3], orientation="vertical",
                 label="$W_1$")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
