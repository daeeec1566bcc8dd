"""Weight-space analysis of GANs: filter diversity and distances between models.

**Filter diversity** (Baek & Shim, "Commonality in Natural Images Rescues GANs", CVPR 2022,
appendix Table 3): for each convolution, the mean cosine similarity over all pairs of distinct
output filters. Lower means more diverse filters; the paper reports 0.0082 (Primitives-PS) vs
0.0135 (FFHQ) in D and 0.0083 vs 0.0143 in G, and links the lower value to better transfer.

Choices made here:

* **Signed mean**, not the mean of absolute values. The paper reports a plain average of cosine
  similarities; its magnitudes (about 0.01 for StyleGAN2 at 256²) are also below what absolute
  values could give: for ``d``-dimensional random filters the mean ``|cos|`` is about
  ``sqrt(2 / (pi * d))``, already 0.012 at ``d = 512 * 3 * 3`` and larger in narrower layers.
* **Every 4-D kernel** ``[O, I, kh, kw]`` with at least two output filters counts, 1×1 included:
  StyleGAN2's ``torgb``, D's ``fromrgb`` and ``skip`` are 1×1 and are listed in the analysis
  too. A filter is flattened to ``I * kh * kw`` values. The kernel is the one the layer
  convolves with (``module.weight``), so AdaFM layers are measured with ``gamma * W + beta``.
  Constant gains (``weight_gain``) do not change a cosine and are left out.

**Distance** (Avrahami et al., "GAN Cocktail", ECCV 2022): ``d(A, B)`` is the mean over layers
``i`` of ``||theta_A,i - theta_B,i||_2``, where a layer is a *parameter* tensor of the same name
and shape in both networks. Buffers do not count: they are constants (resampling filters),
random draws fixed at construction (``noise_const``) or running statistics (``w_avg``), not
learned weights. Networks are compared in the form they are published in
(:meth:`ganzoo.architectures.Architecture.for_upload`: AdaFM generators folded), so their layers
are the effective kernels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo._build import format_names
from ganzoo._io import atomic_path
from ganzoo.checkpoint import GAN
from ganzoo.errors import GanzooError

__all__ = ["distance", "filter_report", "filter_similarity", "mean_pairwise_cosine", "plot_filter_similarity"]


def as_gan(source: GAN | str | os.PathLike) -> GAN:
    """Returns ``source`` when it is a :class:`GAN`, else ``ganzoo.load(source)``."""
    if isinstance(source, GAN):
        return source
    # Registry names and Hub ids too: ganzoo.api reaches the Hub only inside load.
    from ganzoo.api import load

    return load(source)


def _published(gan: GAN) -> GAN:
    """``gan`` in the form it is published in (its architecture's
    :meth:`~ganzoo.architectures.Architecture.for_upload`: AdaFM folded), for weight comparisons."""
    return gan.architecture.for_upload(gan)[0]


# ----------------------------------------------------------------------------------------------
# Filter diversity


def mean_pairwise_cosine(weight: torch.Tensor) -> float:
    """The mean cosine similarity over all pairs of distinct output filters of a kernel.

    Computed as one matrix product: rows (filters) are normalized, their Gram matrix holds every
    pairwise cosine, and the off-diagonal mean is ``(sum(G) - trace(G)) / (O * (O - 1))``.

    Args:
        weight: a kernel ``[O, ...]`` with ``O >= 2``; each ``weight[o]`` is one filter.

    Returns:
        The signed mean in [-1, 1]. All-zero filters have cosine 0 with everything.
    """
    filters = weight.detach().to(torch.float64).flatten(1)  # [O, I*kh*kw]
    count = filters.shape[0]
    if count < 2:
        raise GanzooError(f"mean_pairwise_cosine: needs at least 2 filters, got {count}")
    unit = torch.nn.functional.normalize(filters, dim=1)
    gram = unit @ unit.T  # [O, O]
    return float((gram.sum() - gram.diagonal().sum()) / (count * (count - 1)))


def filter_similarity(net: nn.Module) -> list[dict]:
    """Mean pairwise filter cosine similarity of every convolution of a network.

    Args:
        net: any network; every submodule whose ``weight`` is a 4-D kernel with at least two
            output filters is measured (StyleGAN2: ``conv0``/``conv1``/``torgb`` of G,
            ``fromrgb``/``conv0``/``conv1``/``skip`` and the epilogue ``conv`` of D). A
            ``ConvTranspose2d`` (weight ``[in, out, kh, kw]``) is read by its output filters.

    Returns:
        One row per convolution in network order: ``{"name": "synthesis.b8.conv0.weight",
        "shape": [...], "mean_similarity": float}`` (``shape``: the stored weight's).
    """
    rows = []
    for module_name, module in net.named_modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
            continue
        stored_shape = list(weight.shape)
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            # A transposed convolution stores [in, out / groups, kh, kw]: its output filters
            # are the second axis (with groups, each group's block).
            groups = module.groups
            per = weight.shape[0] // groups
            weight = weight.reshape(groups, per, *weight.shape[1:]).transpose(1, 2).reshape(-1, per, *weight.shape[2:])
        if weight.shape[0] < 2:
            continue
        rows.append({
            "name": f"{module_name}.weight" if module_name else "weight",
            "shape": stored_shape,
            "mean_similarity": mean_pairwise_cosine(weight),
        })
    return rows


def _mean(rows: list[dict]) -> float | None:
    return sum(r["mean_similarity"] for r in rows) / len(rows) if rows else None


def filter_report(gan: GAN | str | os.PathLike) -> dict:
    """Filter diversity of a GAN's generator and discriminator.

    Args:
        gan: a :class:`GAN`, or anything :func:`ganzoo.load` accepts.

    Returns:
        ``{"generator": "G_ema", "G": [rows], "D": [rows] or None, "G_mean": float,
        "D_mean": float or None}``: rows as :func:`filter_similarity` gives; a network's mean is
        the unweighted mean over its layers. The generator measured is ``G_ema`` (what users
        sample from; always present).
    """
    gan = as_gan(gan)
    g_rows = filter_similarity(gan.G_ema)
    d_rows = filter_similarity(gan.D) if gan.D is not None else None
    return {
        "generator": "G_ema",
        "G": g_rows,
        "D": d_rows,
        "G_mean": _mean(g_rows),
        "D_mean": _mean(d_rows) if d_rows is not None else None,
    }


def plot_filter_similarity(reports: dict[str, dict], path: str | os.PathLike) -> Path:
    """Draws filter similarity per layer, one line per model, in a G panel and a D panel.

    Args:
        reports: model label -> :func:`filter_report` result.
        path: PNG to write (atomically; matplotlib's Agg backend, no timestamp in the file, so
            the same reports give the same bytes).

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
    for ax, network, title in ((axes[0], "G", "generator (G_ema)"), (axes[1], "D", "discriminator")):
        names: list[str] = []
        for report in reports.values():
            names += [r["name"] for r in report[network] or [] if r["name"] not in names]
        for label, report in reports.items():
            rows = report[network] or []
            ax.plot([names.index(r["name"]) for r in rows], [r["mean_similarity"] for r in rows],
                    marker="o", markersize=3, label=label)
        ax.axhline(0.0, color="grey", linewidth=0.5)
        ax.set_xticks(range(len(names)), [n.removesuffix(".weight").removeprefix("synthesis.") for n in names],
                      rotation=90, fontsize=6)
        ax.set_title(title)
        ax.set_ylabel("mean pairwise filter cosine similarity")
        if names:
            ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------
# Distance


def _weights(net: nn.Module, names: set[str]) -> dict[str, torch.Tensor]:
    """The net's tensors named in ``names``, in its own order: its parameters, and the weights a
    FreezeD copy holds as buffers under the same names."""
    return {n: t for n, t in net.state_dict(keep_vars=True).items() if n in names}


def _layer_norms(net_a: nn.Module, net_b: nn.Module, what: str) -> list[float]:
    # Weights are what is a parameter in either network: a layer FreezeD froze in one (a buffer
    # there) is compared with the same layer trained in the other.
    names = {n for n, _ in net_a.named_parameters()} | {n for n, _ in net_b.named_parameters()}
    params_a = _weights(net_a, names)
    params_b = _weights(net_b, names)
    only_a = [n for n in params_a if n not in params_b]
    only_b = [n for n in params_b if n not in params_a]
    shapes = [
        f"{n} {list(params_a[n].shape)} vs {list(params_b[n].shape)}"
        for n in params_a
        if n in params_b and params_a[n].shape != params_b[n].shape
    ]
    problems = []
    if only_a:
        problems.append(f"only in A: {format_names(only_a, 5)}")
    if only_b:
        problems.append(f"only in B: {format_names(only_b, 5)}")
    if shapes:
        problems.append(f"different shapes: {format_names(shapes, 5)}")
    if problems:
        raise GanzooError(f"distance: {what} architectures differ ({'; '.join(problems)})")
    with torch.no_grad():
        return [
            float(torch.linalg.vector_norm(p.detach().double() - params_b[n].detach().to(p.device).double()))
            for n, p in params_a.items()
        ]


def distance(a: GAN | str | os.PathLike, b: GAN | str | os.PathLike) -> dict[str, Any]:
    """GAN Cocktail's weight-space distance ``d(A, B)`` between two GANs of one architecture.

    ``d`` is the mean over layers of the L2 norm of the difference of the layer's parameters
    (see the module docstring for what a layer is).

    Args:
        a: a :class:`GAN`, or anything :func:`ganzoo.load` accepts (registry name, Hub id,
            checkpoint directory, foreign file).
        b: the same for the other model.

    Returns:
        ``{"G": d over the generator's layers, "D": d over the discriminator's (None unless both
        have one), "mean": d over all layers of both networks together, "layers": number of
        layers in "mean", "G_layers": int, "D_layers": int, "generator": "G_ema"}``.

    Raises:
        GanzooError: the networks differ in parameter names or shapes (the message names them).
    """
    gan_a, gan_b = _published(as_gan(a)), _published(as_gan(b))
    g_norms = _layer_norms(gan_a.G_ema, gan_b.G_ema, "generator (G_ema)")
    d_norms = _layer_norms(gan_a.D, gan_b.D, "discriminator") if gan_a.D is not None and gan_b.D is not None else []
    all_norms = g_norms + d_norms
    return {
        "G": sum(g_norms) / len(g_norms),
        "D": sum(d_norms) / len(d_norms) if d_norms else None,
        "mean": sum(all_norms) / len(all_norms),
        "layers": len(all_norms),
        "G_layers": len(g_norms),
        "D_layers": len(d_norms),
        "generator": "G_ema",
    }
