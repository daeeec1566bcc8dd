"""``ganzoo.merge`` (this package is ``ganzoo.cocktail``): GAN Cocktail (Avrahami, Lischinski & Fried, ECCV 2022) and its baselines.

N pretrained GANs become one class-conditional GAN of the root's size without their training
data: the source generators are the only data ("procedural data", drawn on the fly and seeded).

* Stage 1, model rooting: for every source ``i`` other than the root ``r``, a copy of GAN_r (G
  and D) is trained on samples of G_i (resampled to r's resolution), giving GAN_{r→i}, which
  shares r's ancestry and stays close to r in weight space.
* Stage 2, merging: the weights of r and every r→i are averaged (G, G_ema, D), the average is
  made class-conditional with N classes (:func:`make_conditional`, which keeps the averaged
  behaviour exactly at the start), and the result is fine-tuned on samples of every G_i labeled
  with its class.

Baselines with the same engine and the same budget (images shown to D: ``(N-1)·root_kimg +
merge_kimg``), all trained on the labeled samples of every source: ``scratch`` (random init of
the root's architecture), ``transfer`` (TransferGAN: the root made conditional), ``freezed``
(transfer with FreezeD) and ``ewc`` (transfer plus the Fisher-weighted penalty
``λ Σ F_k (θ_k − θ_S,k)²`` with the Fisher of the root's own G/D under the BCE loss).

The output directory ``OUT``::

    OUT/merge.json          the plan (sources, root, method, budgets, seed, engine options)
    OUT/stages/NN-NAME/     one training run per stage (a ganzoo.finetune run directory)
    OUT/stages/ewc-fisher.safetensors   (ewc) the anchor weights and their Fisher
    OUT/config.json, *.safetensors, README.md   the merged conditional checkpoint (config.json last)
    OUT/merge_summary.json  classes, stages, weight distances d(r, i) and d(r, r→i), metrics
    OUT/merge_grid.png      rows per class, cross-class interpolation, style mixing between classes

Every stage writes atomic snapshots; ``resume=True`` skips completed stages and continues the
running one from its newest snapshot, giving the bytes of an uninterrupted merge.

Modules: ``sources`` (the models and their seeded sample streams), ``weights`` (averaging, the
conditional conversion, EWC's anchor), ``scoring`` (``--eval``'s FID/KID against each source,
the sample grid), ``stages`` (:func:`merge`: checks, plan, stages, the merged checkpoint). The
settings every stage trains with are one :class:`~ganzoo.train.options.FinetuneOptions`.
"""

from __future__ import annotations

from ganzoo.cocktail.scoring import evaluate_merge, sample_grid
from ganzoo.cocktail.sources import Source, SourceSampler, load_sources, rooting_stream, union_stream
from ganzoo.cocktail.stages import FISHER_FILE, GRID_FILE, METHODS, PLAN_FILE, STAGES, SUMMARY_FILE, merge
from ganzoo.cocktail.weights import average_gans, fisher_information, make_conditional, write_ewc_anchor

__all__ = [
    "FISHER_FILE",
    "GRID_FILE",
    "METHODS",
    "PLAN_FILE",
    "STAGES",
    "SUMMARY_FILE",
    "Source",
    "SourceSampler",
    "average_gans",
    "evaluate_merge",
    "fisher_information",
    "load_sources",
    "make_conditional",
    "merge",
    "rooting_stream",
    "sample_grid",
    "union_stream",
    "write_ewc_anchor",
]
