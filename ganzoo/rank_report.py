"""How a ranking is shown: the table ``ganzoo rank`` prints (:func:`render_table`), the bar plot
(``--plot``, :func:`write_plot`), and ``--report rank.html``, one self-contained HTML page.

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
from PIL import Image, ImageDraw, ImageFont
from rich import box
from rich.table import Table

from ganzoo._console import fitted_table, natural_width
from ganzoo._io import atomic_path

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


#: The proxies ``ganzoo rank`` scores, and whether higher is better (``ganzoo.ranking.METRICS``).
HIGHER_IS_BETTER = {"fid": False, "kid": False, "recall": True, "precision": True}


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
            f"({'higher' if HIGHER_IS_BETTER.get(sort) else 'lower'} is better).</p>\n")  # fmt: skip


def _recommendation(result: RankResult) -> str:
    """The recommended source (or why there is none, or, with low confidence, the least far and
    the caveats) and the recipe hint."""
    if result.recommended and result.caveats:
        caveats = "".join(f"<li>{_e(caveat)}</li>" for caveat in result.caveats)
        recommended = (f"Least far from the target, with <b>low confidence</b>: <b class=\"recommended\">"
                       f"{_e(result.recommended)}</b><ul class=\"caveats\">{caveats}</ul>")  # fmt: skip
    elif result.recommended:
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


def write_plot(result: RankResult, path: str | os.PathLike) -> Path:
    """A PNG of horizontal bar charts, one panel per proxy (FID, KID, precision, recall), in the
    ranking's order; the sort metric's panel comes first. Drawn with PIL (no plotting library)."""
    metrics = [result.metric] + [m for m in HIGHER_IS_BETTER if m != result.metric]
    font = ImageFont.load_default()
    names = [c.name if len(c.name) <= 36 else "…" + c.name[-35:] for c in result.candidates]
    label_w = max(60, max((int(font.getlength(n)) for n in names), default=60) + 24)
    bar_w, row_h, pad, title_h = 260, 18, 12, 22
    panel_h = title_h + row_h * len(names) + pad
    width = label_w + bar_w + 90
    image = Image.new("RGB", (width, pad + panel_h * len(metrics) + 20), "white")
    draw = ImageDraw.Draw(image)
    y = pad
    for metric in metrics:
        higher = HIGHER_IS_BETTER[metric]
        values = [c.value(metric) for c in result.candidates]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        top = max((abs(v) for v in finite), default=1.0) or 1.0
        arrow = "higher is better" if higher else "lower is better"
        star = " (sort key)" if metric == result.metric else ""
        draw.text((pad, y), f"{metric.upper()}{star}: {arrow}", fill="black", font=font)
        y += title_h
        for name, value in zip(names, values):
            draw.text((pad, y + 3), name, fill="black", font=font)
            if value is None or not math.isfinite(value):
                draw.text((label_w, y + 3), "n/a", fill="gray", font=font)
            else:
                length = max(1, int(bar_w * abs(value) / top))
                color = (70, 130, 180) if name != names[0] else (220, 120, 40)
                draw.rectangle([label_w, y + 2, label_w + length, y + row_h - 3], fill=color)
                draw.text((label_w + length + 4, y + 3), f"{value:.4g}", fill="black", font=font)
            y += row_h
        y += pad
    draw.text((pad, y), f"target {result.target} ({result.num_target} images), {result.feature_extractor}, "
              f"N={result.num_gen}", fill="gray", font=font)  # fmt: skip
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return Path(path)


def render_table(result: RankResult, width: int | None = None):
    """The ranking as a rich table, best first (what ``ganzoo rank`` prints; notes go below it).

    Args:
        width: the console's width. Columns that do not fit are left out (``from``, then
            ``cover``, then ``dens``) and named in the caption; a candidate name too long even
            then is folded over lines, never cut. Numbers are never cut.
    """
    def fmt(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    short = {"fid": "FID", "kid": "KID", "precision": "prec", "recall": "recall"}
    headers = ["#", "candidate"] + [f"{short[m]}{'↑' if HIGHER_IS_BETTER[m] else '↓'}" + ("*" if m == result.metric else "")
                                    for m in ("fid", "kid", "precision", "recall")] + ["dens", "cover", "from"]  # fmt: skip
    rows = [[str(position), row.name, fmt(row.fid, 2), fmt(row.kid, 5), fmt(row.precision, 3), fmt(row.recall, 3),
             fmt(row.density, 3), fmt(row.coverage, 3), row.features_from or "-"]
            for position, row in enumerate(result.candidates, 1)]  # fmt: skip
    title = (f"{result.target}: {result.num_target} images at {result.target_resolution}px, "
             f"{result.feature_extractor}, N={result.num_gen}, {result.regime}")  # fmt: skip

    caption_lines = [f"low confidence: {caveat}" for caveat in result.caveats]

    def build(left_out: list[str], fold: bool = False) -> Table:
        lines = caption_lines + ([f"{', '.join(left_out)}: left out at {width} columns (see --json, or widen the terminal)"]
                                 if left_out else [])  # fmt: skip
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True, title=title,
                      caption="\n".join(lines) or None, caption_justify="left")  # fmt: skip
        for header in headers:
            if header in left_out:
                continue
            if header == "candidate":  # names are what users copy: folded whole if need be, never cut
                table.add_column(header, no_wrap=not fold, overflow="fold")
            else:
                table.add_column(header, justify="left" if header == "from" else "right", no_wrap=True,
                                 min_width=1 if header == "#" else None)  # fmt: skip
        for values in rows:
            table.add_row(*[v for h, v in zip(headers, values) if h not in left_out])
        return table

    table, left_out = fitted_table(build, ("from", "cover", "dens"), width)
    if width is not None and natural_width(table) > width:  # even so too wide: a long name folds
        return build(left_out, fold=True)
    return table


def candidate_notes(result: RankResult) -> list[str]:
    """Per-candidate notes (resolution differences, missing features) as ``name: note`` lines."""
    return [f"{row.name}: {note}" for row in result.candidates for note in row.notes]
