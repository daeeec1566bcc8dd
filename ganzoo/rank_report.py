"""``ganzoo rank --report rank.html``: the ranking as one self-contained HTML page.

The page holds a sample of the target's images, and for each candidate, in the ranking's order,
a grid of its samples beside its scores, where its features came from and its notes; then the
recommendation and the recipe hint. Images are embedded as base64 PNG ``data:`` URIs and the
style is inline: the page loads nothing (no scripts at all, no fonts, no CDN), and its
Content-Security-Policy says so, so it reads the same without network. Every text that goes into
the page (candidate names, paths, notes) is HTML-escaped.

The samples shown are the ranking's own first samples: seeds ``seed .. seed+n-1``, truncation 1,
per-image noise seeded by the seed, and for a class-conditional candidate class ``i % c_dim`` for
image ``i`` (the plan of :func:`ganzoo.metrics.cache.sample_plan`). The ranking keeps only
features, so they are generated here: a candidate whose features were published is loaded (its
weights pulled) for its grid; one that cannot be loaded is shown without samples, with the reason.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ganzoo.metrics.evaluate import Candidate
    from ganzoo.ranking import RankedCandidate, RankResult

__all__ = ["REPORT_SUFFIXES", "render_report", "write_report"]

REPORT_SUFFIXES = (".html", ".htm")
NUM_SAMPLES = 8  # samples per candidate grid
NUM_THUMBNAILS = 16  # target images shown
SAMPLE_TILE = 128  # largest tile side in a candidate grid (larger samples are downsized)
THUMB_TILE = 96  # largest tile side of a target thumbnail

_FEATURES_FROM = {
    "generated": "generated samples (sampled and featurized for this ranking)",
    "cache": "generated samples (their features read from the feature cache)",
    "published": "published sample features (features/{extractor}.safetensors in its repo or directory)",
    "published-real": "published real-data features of its source dataset (features/{extractor}-real.safetensors)",
}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #1d1d1f;
       background: #fafafa; max-width: 1100px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 22px 0 8px; }
.meta, .small { color: #555; font-size: 13px; }
.recommend { background: #fff4e5; border: 1px solid #f0b36a; border-radius: 6px; padding: 10px 14px; margin: 14px 0; }
.recommend code { background: #fff; padding: 1px 4px; border-radius: 3px; }
.grid { image-rendering: pixelated; border: 1px solid #ccc; background: #fff; max-width: 100%; }
table.summary { border-collapse: collapse; font-size: 13px; background: #fff; }
table.summary th, table.summary td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }
table.summary th:nth-child(2), table.summary td:nth-child(2) { text-align: left; word-break: break-all; }
section.candidate { display: flex; gap: 18px; align-items: flex-start; background: #fff; border: 1px solid #ddd;
                    border-radius: 6px; padding: 12px; margin: 10px 0; }
section.best { border: 2px solid #dc7828; }
.samples { flex: 0 0 auto; text-align: center; }
.scores { flex: 1 1 auto; min-width: 0; }
.scores h3 { font-size: 15px; margin: 0 0 6px; word-break: break-all; }
.scores table { border-collapse: collapse; font-size: 13px; }
.scores td { padding: 1px 10px 1px 0; } .scores td.v { text-align: right; font-variant-numeric: tabular-nums; }
.missing { color: #999; } .note { color: #8a4b00; font-size: 13px; }
.nosamples { width: 200px; padding: 30px 8px; border: 1px dashed #bbb; color: #777; font-size: 13px; }
"""

# metric -> (label, digits, higher is better)
_SCORES = (("fid", "FID", 2, False), ("kid", "KID", 5, False), ("precision", "precision", 3, True),
           ("recall", "recall", 3, True), ("density", "density", 3, True), ("coverage", "coverage", 3, True))  # fmt: skip


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _png_uri(image: np.ndarray) -> str:
    from PIL import Image

    array = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _grid(images: np.ndarray, columns: int, tile: int) -> np.ndarray:
    """``[N, H, W, C]`` uint8 -> one image of ``columns`` tiles a row, each at most ``tile`` px,
    with a 2 px white gutter."""
    from PIL import Image

    n, height, _, channels = images.shape
    side = min(height, tile)
    if side != height:
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
        images = np.stack([np.asarray(Image.fromarray(im[:, :, 0] if channels == 1 else im, mode).resize(
            (side, side), Image.LANCZOS)).reshape(side, side, channels) for im in images])  # fmt: skip
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    gap = 2
    canvas = np.full((rows * side + (rows - 1) * gap, columns * side + (columns - 1) * gap, channels), 255, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[r * (side + gap) : r * (side + gap) + side, c * (side + gap) : c * (side + gap) + side] = image
    return canvas


def _display_width(grid: np.ndarray, minimum: int = 240, maximum: int = 420) -> int:
    """Tiny grids (16 px samples) are shown enlarged (pixelated), large ones at most ``maximum``."""
    width = grid.shape[1]
    return int(min(maximum, max(width, minimum)))


def _target_thumbnails(result: RankResult, count: int) -> tuple[np.ndarray | None, str]:
    """A spread of ``count`` target images (every k-th file, in the dataset's order)."""
    from ganzoo.data import ImageDataset

    try:
        dataset = ImageDataset(result.target, resolution=result.target_resolution, channels=3)
        step = max(1, len(dataset.names) // count)
        dataset.names = dataset.names[::step][:count]
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the ranking already reported unreadable files
            images = dataset.read_all()
        which = "in name order" if step == 1 else f"one file in {step}, in name order"
        return images, f"{len(images)} of the {result.num_target} target images ({which}), at {result.target_resolution}px"
    except Exception as exc:  # noqa: BLE001 - a report without thumbnails still reports the ranking
        return None, f"target images not shown: {exc}"


def _candidate_samples(name: str, candidate: Candidate | None, seed: int, count: int,
                       device: str) -> tuple[np.ndarray | None, str]:  # fmt: skip
    """The candidate's first ``count`` ranking samples and a sentence saying what they are."""
    from ganzoo.metrics.cache import _sample_batches

    try:
        if candidate is None:
            from ganzoo.metrics.evaluate import resolve_candidate

            candidate = resolve_candidate(name, progress=False)
        import torch

        gan = candidate.load(device)
        with torch.no_grad():
            images = np.concatenate(list(_sample_batches(gan, count, seed, count)))
    except Exception as exc:  # noqa: BLE001 - one candidate without samples must not lose the page
        return None, f"no samples: {' '.join(str(exc).split()) or type(exc).__name__}"
    c_dim = gan.metadata.num_classes
    what = f"seeds {seed}..{seed + count - 1}, truncation 1, noise seeded by the seed"
    if c_dim:
        names = gan.class_names or []
        shown = [f"{c} ({names[c]})" if c < len(names) else str(c) for c in range(min(c_dim, count))]
        what += (f"; class-conditional ({c_dim} classes): image i has class i mod {c_dim}, "
                 f"i.e. classes {', '.join(shown)}{', …' if c_dim > count else ''}")  # fmt: skip
    return images, f"{len(images)} samples, {what} (the ranking's first samples)"


def _fmt(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


#: The sort metrics for which higher is better (ganzoo.ranking.METRICS; this module sits below
#: ganzoo.ranking, which imports it, so it does not import it back).
_HIGHER_IS_BETTER = frozenset({"recall", "precision"})


def render_report(result: RankResult, candidates: Mapping[str, Candidate] | None = None,
                  num_samples: int = NUM_SAMPLES, num_thumbnails: int = NUM_THUMBNAILS,
                  device: str = "cpu") -> str:  # fmt: skip
    """The report page as a string (see :func:`write_report`)."""
    candidates = candidates or {}
    parts = [_head(result)]
    # The recommendation first: it is what the page is for.
    parts.append(_recommendation(result))
    parts.append(_target_section(result, num_thumbnails))
    # The table's summary, then one section per candidate, in the same (ranking) order.
    parts.append(_summary_table(result))
    parts.append("<h2>Candidates</h2>\n")
    for position, row in enumerate(result.candidates, 1):
        parts.append(_candidate_section(result, position, row, candidates.get(row.name), num_samples, device))
    if result.notes:
        parts.append("<h2>Notes</h2>\n<ul>\n" + "".join(f"<li class=\"note\">{_e(text)}</li>\n" for text in result.notes)
                     + "</ul>\n")  # fmt: skip
    parts.append("<p class=\"small\">Made by ganzoo rank (Grigoryev et al., ICLR 2022: the distance between the target "
                 "and each candidate's samples predicts the best source for finetuning).</p>\n</body>\n</html>\n")  # fmt: skip
    return "".join(parts)


def _head(result: RankResult) -> str:
    """The page's head (title, style, the policy that it loads nothing), heading and settings."""
    sort = result.metric
    title = f"ganzoo rank: {result.target}"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n"
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>Source checkpoints for <code>{_e(result.target)}</code></h1>\n"
            f"<p class=\"meta\">{_e(result.num_target)} target images at {_e(result.target_resolution)}px; "
            f"feature extractor <b>{_e(result.feature_extractor)}</b>; regime {_e(result.regime)}; "
            f"N={_e(result.num_gen)} samples per candidate from seed {_e(result.seed)}; "
            f"sorted by <b>{_e(sort.upper() if sort in ('fid', 'kid') else sort)}</b> "
            f"({'higher' if sort in _HIGHER_IS_BETTER else 'lower'} is better).</p>\n")  # fmt: skip


def _recommendation(result: RankResult) -> str:
    """The recommended source (or why there is none) and the recipe hint."""
    if result.recommended:
        recommended = f"Recommended source: <b class=\"recommended\">{_e(result.recommended)}</b><br>"
    else:
        recommended = "No recommendation: no candidate could be scored.<br>"
    return (f"<div class=\"recommend\" id=\"recommendation\">{recommended}"
            f"Recipe hint: <code class=\"recipe\">{_e(result.recipe_hint)}</code></div>\n")  # fmt: skip


def _target_section(result: RankResult, num_thumbnails: int) -> str:
    """Thumbnails of the target's images and what they are."""
    parts = ["<h2>Target</h2>\n"]
    thumbs, thumbs_text = _target_thumbnails(result, num_thumbnails)
    if thumbs is not None:
        grid = _grid(thumbs, 8, THUMB_TILE)
        parts.append(f"<img class=\"grid target\" alt=\"target images\" src=\"{_png_uri(grid)}\" "
                     f"width=\"{_display_width(grid, minimum=400, maximum=800)}\">\n")  # fmt: skip
    parts.append(f"<p class=\"small\">{_e(thumbs_text)}</p>\n")
    return "".join(parts)


def _summary_table(result: RankResult) -> str:
    """Every candidate's scores in one table, in the ranking's order."""
    parts = ["<h2>Ranking</h2>\n<table class=\"summary\">\n<tr><th>#</th><th>candidate</th>"]
    for key, label, _, higher in _SCORES:
        star = "*" if key == result.metric else ""
        parts.append(f"<th>{_e(label)} {'↑' if higher else '↓'}{star}</th>")
    parts.append("<th>features</th></tr>\n")
    for position, row in enumerate(result.candidates, 1):
        parts.append(f"<tr><td>{position}</td><td>{_e(row.name)}</td>")
        for key, _, digits, _ in _SCORES:
            parts.append(f"<td>{_e(_fmt(row.value(key), digits)) or '–'}</td>")
        parts.append(f"<td>{_e(row.features_from or '–')}</td></tr>\n")
    parts.append("</table>\n")
    return "".join(parts)


def _candidate_section(result: RankResult, position: int, row: RankedCandidate, candidate: Candidate | None,
                       num_samples: int, device: str) -> str:  # fmt: skip
    """One candidate: a grid of its first samples beside its scores, features and notes."""
    best = row.name == result.recommended
    parts = [f"<section class=\"candidate{' best' if best else ''}\" id=\"candidate-{position}\" "
             f"data-rank=\"{position}\" data-name=\"{_e(row.name)}\">\n<div class=\"samples\">"]  # fmt: skip
    images, sampled = _candidate_samples(row.name, candidate, result.seed, num_samples, device)
    if images is not None:
        grid = _grid(images, 4, SAMPLE_TILE)
        parts.append(f"<img class=\"grid\" alt=\"samples of {_e(row.name)}\" src=\"{_png_uri(grid)}\" "
                     f"width=\"{_display_width(grid)}\">")  # fmt: skip
    else:
        parts.append("<div class=\"nosamples\">no samples</div>")
    parts.append(f"<div class=\"small\" style=\"max-width: 420px\">{_e(sampled)}</div></div>\n<div class=\"scores\">")
    parts.append(f"<h3>#{position} {_e(row.name)}{' — recommended' if best else ''}</h3>\n<table>")
    for key, label, digits, higher in _SCORES:
        value = _fmt(row.value(key), digits)
        shown = _e(value) if value else "<span class=\"missing\">not computed</span>"
        parts.append(f"<tr><td>{_e(label)} {'↑' if higher else '↓'}{' (sort key)' if key == result.metric else ''}</td>"
                     f"<td class=\"v\">{shown}</td></tr>")  # fmt: skip
    parts.append("</table>\n")
    extractor = result.feature_extractor
    if row.features_from:
        source = _FEATURES_FROM.get(row.features_from, row.features_from).format(extractor=extractor)
        count = f"{row.num_samples} " if row.num_samples is not None else ""
        parts.append(f"<p class=\"small\">features: {_e(count)}{_e(source)}; extractor {_e(extractor)}"
                     f"{'; resolution ' + _e(row.resolution) + 'px' if row.resolution else ''}</p>\n")  # fmt: skip
    else:
        parts.append("<p class=\"small\">features: none (not scored)</p>\n")
    parts += [f"<p class=\"note\">note: {_e(text)}</p>\n" for text in row.notes]
    parts.append("</div>\n</section>\n")
    return "".join(parts)


def write_report(result: RankResult, path: str | os.PathLike, candidates: Mapping[str, Candidate] | None = None,
                 num_samples: int = NUM_SAMPLES, num_thumbnails: int = NUM_THUMBNAILS, device: str = "cpu") -> Path:  # fmt: skip
    """Writes the ranking as one self-contained HTML page (images embedded, no scripts).

    Args:
        result: the ranking (:func:`ganzoo.ranking.rank`).
        path: an ``.html`` file; replaced atomically (``rank`` checks it before the work).
        candidates: the resolved candidates by name (``rank`` passes its own); the others are
            resolved again from their names.
        num_samples: samples per candidate grid (the ranking's first seeds).
        num_thumbnails: target images shown.
        device: torch device for sampling.

    Returns:
        The written path.
    """
    from ganzoo._io import atomic_write_text, check_output

    check_output(path, suffixes=REPORT_SUFFIXES, overwrite=True)
    page = render_report(result, candidates, num_samples=num_samples, num_thumbnails=num_thumbnails, device=device)
    atomic_write_text(path, page)
    return Path(path)
