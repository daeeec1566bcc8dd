"""The ``ganzoo`` command line: parse arguments, call the public API, print with rich.

Every :class:`ganzoo.errors.GanzooError` becomes one line on stderr and exit code 1; a usage
error (unknown command or option, a missing argument, a value of the wrong type) is the usage
line and one error line, exit code 2 (click's convention).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.table import Table

from ganzoo.errors import GanzooError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

app = typer.Typer(
    name="ganzoo",
    help="A model zoo and checkpoint hub for pretrained GANs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True, emoji=False)  # ":x" in a device name is text, not an emoji


def _show_version(value: bool) -> None:
    if value:
        from ganzoo import __version__

        console.print(f"ganzoo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """A model zoo and checkpoint hub for pretrained GANs."""


def _read_config_option(config: Optional[Path]) -> Optional[dict]:
    if config is None:
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GanzooError(f"{config}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise GanzooError(f"{config}: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise GanzooError(f"{config}: expected a JSON object with 'generator' and/or 'discriminator'")
    return data


def _network_table(gan) -> Table:
    table = Table(title=None, show_header=True)
    table.add_column("network")
    table.add_column("parameters", justify="right")
    table.add_column("settings")
    meta = gan.metadata
    classes = f"{meta.num_classes} classes" if meta.num_classes else "unconditional"
    settings = f"{gan.architecture.name}, {meta.resolution}px, {meta.channels} ch, {classes}"
    for role, net in gan.networks().items():
        n_params = sum(t.numel() for t in net.state_dict().values())
        table.add_row(role, f"{n_params:,}", settings)
    return table


@app.command()
def convert(
    src: Path = typer.Argument(..., help="Foreign checkpoint: StyleGAN2-ADA .pkl, StyleGAN2 TF .pkl, or torch .pt/.pth."),
    out_dir: Optional[Path] = typer.Argument(None, help="Checkpoint directory to write."),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON with 'generator'/'discriminator' kwargs (state-dict files)."),
    license: str = typer.Option("unknown", "--license", help="License of the weights, recorded in config.json."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT_DIR if it exists."),
    as_name: Optional[str] = typer.Option(None, "--as", help="Register SRC as this registry model in ganzoo's cache (OUT_DIR not needed)."),
) -> None:
    """Convert a foreign checkpoint safely (no code from it runs) into a ganzoo checkpoint directory."""
    from ganzoo.readers import convert as convert_fn

    if as_name is not None:
        if out_dir is not None or config is not None:
            raise GanzooError("convert --as NAME takes no OUT_DIR or --config: the registry entry says where and how")
        from ganzoo.hub import register_converted

        path = register_converted(src, as_name)
        console.print(f"registered [bold]{src}[/] as [bold]{as_name}[/] -> {path}", soft_wrap=True)
        console.print(f"ganzoo.load({as_name!r}) now loads it without network")
        return
    if out_dir is None:
        raise GanzooError("convert: give OUT_DIR, or --as NAME to register the file as a registry model")
    gan = convert_fn(src, out_dir, config=_read_config_option(config), license=license, overwrite=overwrite)
    source = gan.config["source"]
    console.print(f"converted [bold]{src}[/] ({source['format']}, sha256 {source['sha256'][:12]}…) -> [bold]{out_dir}[/]")
    console.print(_network_table(gan))
    for note in source.get("notes", []):
        console.print(f"note: {note}")


@app.command()
def export(
    checkpoint_dir: Path = typer.Argument(..., help="ganzoo checkpoint directory, registry name or Hub repo id."),
    out: Path = typer.Argument(..., help="Output .pt file: {'G': ..., 'D': ..., 'G_ema': ...} state dicts."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
) -> None:
    """Export a checkpoint as a plain state-dict file the official code loads."""
    from ganzoo._io import check_output
    from ganzoo.readers import export as export_fn

    check_output(out, suffixes=(".pt", ".pth"), overwrite=overwrite)  # before any download
    if not checkpoint_dir.exists() and not str(checkpoint_dir).startswith((".", "/", "~")):
        from ganzoo.hub import pull_checkpoint

        checkpoint_dir = pull_checkpoint(str(checkpoint_dir)).path  # a registry name or Hub repo
    export_fn(checkpoint_dir, out, overwrite=overwrite)
    console.print(f"wrote {out}")


def _to_pil(images: np.ndarray):
    from PIL import Image

    channels = images.shape[-1]
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels)
    if mode is None:
        raise GanzooError(f"cannot write {channels}-channel images as PNG")
    return [Image.fromarray(img[..., 0] if channels == 1 else img, mode) for img in images]


def _grid(images: np.ndarray) -> np.ndarray:
    from ganzoo.images import image_grid

    return image_grid(images)


# What `generate --out` writes, by the file's suffix (any other suffix is refused before the work).
_IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def _save_image(image, path: Path) -> None:
    from ganzoo._io import atomic_path

    image_format = _IMAGE_FORMATS.get(path.suffix.lower(), "PNG")
    with atomic_path(path) as tmp:
        # JPEG: fixed quality and no subsampling of colour, so the same grid gives the same bytes.
        options = {"quality": 95, "subsampling": 0} if image_format == "JPEG" else {}
        image.save(tmp, format=image_format, **options)


GRID_LIMIT = 256  # images in one --out grid (16x16); more go one PNG per seed with --outdir
PROGRESS_SEEDS = 64  # generate shows its progress from this many seeds on


def _sample_chunks(gan, seeds: list[int], batch_size: int, **options):
    """Yields ``(seeds, images)`` a few batches at a time (the batches ``gan.sample`` makes of all
    seeds at once, so the same bytes), with progress on stderr from :data:`PROGRESS_SEEDS` seeds."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from ganzoo._progress import progress

    step = max(int(batch_size), 1) * 4
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with progress(*columns, console=Console(stderr=True), disable=len(seeds) < PROGRESS_SEEDS, unit="images",
                  rate_unit="img/s") as bar:  # fmt: skip
        task = bar.add_task("generate", total=len(seeds))
        for start in range(0, len(seeds), step):
            chunk = seeds[start : start + step]
            yield chunk, gan.sample(seeds=chunk, batch_size=batch_size, **options)
            bar.advance(task, len(chunk))


@app.command()
def generate(
    src: str = typer.Argument(..., help="Checkpoint directory or foreign checkpoint file."),
    seeds: str = typer.Option("0-15", "--seeds", help="Seeds, e.g. '0-15' or '1,5,9'."),
    trunc: float = typer.Option(1.0, "--trunc", help="Truncation psi (1 = off)."),
    class_: Optional[str] = typer.Option(None, "--class", help="Class index or name (conditional models)."),
    noise_mode: str = typer.Option("const", "--noise-mode", help="const | random | none."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write one grid here: FILE.png (or .jpg); an existing file is replaced."),
    outdir: Optional[Path] = typer.Option(None, "--outdir", help="Write one PNG per seed here (seedNNNN.png): a new or empty folder."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    batch_size: int = typer.Option(8, "--batch-size", help="Images per forward pass (does not change the result)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --outdir (once the new one is complete)."),
) -> None:
    """Generate images from a GAN: a grid (--out) or one PNG per seed (--outdir)."""
    from ganzoo.api import load
    from ganzoo.checkpoint import parse_seeds

    if (out is None) == (outdir is None):
        raise GanzooError("generate: give exactly one of --out FILE.png or --outdir DIR")
    if noise_mode not in ("const", "random", "none"):
        raise GanzooError(f"--noise-mode must be const, random or none, not {noise_mode!r}")
    from ganzoo._io import atomic_directory, check_output

    if out is not None:  # checked before the model is loaded and sampled
        check_output(out, suffixes=tuple(_IMAGE_FORMATS), overwrite=True)
    else:
        check_output(outdir, "dir", overwrite=overwrite)
    seed_list = parse_seeds(seeds)
    if out is not None and len(seed_list) > GRID_LIMIT:
        raise GanzooError(f"--out: a grid holds at most {GRID_LIMIT} images, not {len(seed_list)}; "
                          "write one PNG per seed with --outdir DIR")  # fmt: skip
    gan = load(src, device=device)
    if out is not None and _IMAGE_FORMATS[out.suffix.lower()] == "JPEG" and gan.metadata.channels == 4:
        raise GanzooError(f"{out}: JPEG has no alpha channel and {src} makes RGBA images; use a .png name")
    class_idx = gan.class_index(class_, option="--class")  # errors name the CLI's option, not the keyword
    chunks = _sample_chunks(gan, seed_list, batch_size, truncation_psi=trunc, class_idx=class_idx, noise_mode=noise_mode)
    if out is not None:
        import numpy as np

        images = np.concatenate([images for _, images in chunks])
        _save_image(_to_pil(_grid(images)[None])[0], out)
        console.print(f"wrote {out} ({len(seed_list)} images)")
    else:
        with atomic_directory(outdir, overwrite=overwrite) as tmp:  # all images or none
            for chunk, images in chunks:  # written as they come: memory does not grow with the seeds
                for seed, image in zip(chunk, _to_pil(images)):
                    image.save(tmp / f"seed{seed:04d}.png", format="PNG")
        console.print(f"wrote {len(seed_list)} images to {outdir}")


# ------------------------------------------------------------------------------------------------
# Registry and Hub: list, info, pull, push, mirror. `list` and `info` import neither torch nor
# huggingface_hub, so they answer in a fraction of a second.


def _print_json(data) -> None:
    # Plain print, not rich: scripts parse this.
    print(json.dumps(data, indent=2, sort_keys=True))


@app.command("list")
def list_command(
    pattern: Optional[str] = typer.Argument(None, help="Filter: shell pattern ('ffhq*') or substring, on names and aliases."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the registry's pretrained checkpoints."""
    from ganzoo.registry import get_entry, list_models

    entries = [get_entry(name) for name in list_models(pattern)]
    if as_json:
        _print_json([{"name": e.name, "aliases": list(e.aliases), "resolution": e.resolution,
                      "dataset": e.dataset.name, "includes": list(e.includes), "hub_repo": e.hub.repo,
                      "license": e.license_name if e.license == "other" else e.license,
                      "manual_download": bool(e.artifacts) and not e.downloadable, "source": e.source} for e in entries])  # fmt: skip
        return
    if not entries:
        console.print(f"no model matches {pattern!r}")
        return
    table = Table(show_header=True)
    table.add_column("name", no_wrap=True)  # names are what users copy: never cut or wrap them
    for column in ("aliases", "res", "dataset", "D", "license"):
        table.add_column(column, justify="right" if column == "res" else "left", overflow="fold")
    for e in entries:
        license_text = e.license_name if e.license == "other" else e.license
        manual = " (manual download)" if e.artifacts and not e.downloadable else " (bundled: offline)" if e.bundled else ""
        table.add_row(e.name, ", ".join(e.aliases), str(e.resolution), e.dataset.name,
                      "yes" if "D" in e.includes else "-", license_text + manual)  # fmt: skip
    console.print(table)


@app.command()
def info(
    name: str = typer.Argument(..., help="Registry name or alias."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show everything the registry knows about a checkpoint."""
    from ganzoo.registry import get_entry

    entry = get_entry(name)
    if as_json:
        _print_json(entry.to_dict())
        return
    license_text = entry.license_name if entry.license == "other" else entry.license
    rows = [
        ("name", entry.name),
        ("aliases", ", ".join(entry.aliases) or "-"),
        ("architecture", entry.architecture),
        ("resolution", f"{entry.resolution}x{entry.resolution}"),
        ("classes", "unconditional" if entry.c_dim == 0 else (str(entry.c_dim) if entry.c_dim else "not stated")),
        ("networks", ", ".join(entry.includes)),
        ("dataset", entry.dataset.name + (f" ({entry.dataset.size:,} images)" if entry.dataset.size else "")),
        ("hub repo", f"{entry.hub.repo}@{entry.hub.revision}"),
        ("license", license_text + (f" ({entry.license_url})" if entry.license_url else "")),
        ("paper", f"{entry.paper.title} ({entry.paper.authors}, {entry.paper.venue or entry.paper.year}) {entry.paper.url}"),
    ]
    for artifact in entry.artifacts:
        extra = [artifact.format]
        if artifact.size:
            extra.append(f"{artifact.size:,} bytes")
        extra.append(f"sha256 {artifact.sha256}" if artifact.sha256 else "sha256 not published")
        if artifact.manual_download:
            extra.append("MANUAL DOWNLOAD")
        rows.append(("upstream", f"{artifact.url} ({', '.join(extra)})"))
        if artifact.manual_download:
            rows.append(("how to get it", artifact.instructions))
    for metric in entry.metrics:
        rows.append(("reported", f"{metric.name} = {metric.value:g}" + (f" on {metric.dataset}" if metric.dataset else "")
                     + f" ({metric.source})"))  # fmt: skip
    if entry.notes:
        rows.append(("notes", entry.notes))
    table = Table(show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # URLs must stay whole (folded, not cut with an ellipsis)
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


@app.command()
def pull(
    name: str = typer.Argument(..., help="Registry name/alias, or a Hub repo id (org/name) in the ganzoo layout."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch, tag or commit of the Hub repo."),
    generator_only: bool = typer.Option(False, "--generator-only", help="Fetch only the EMA generator."),
    force: bool = typer.Option(False, "--force", help="Download again even when cached."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Fetch a checkpoint into the local cache (Hub first, upstream release as fallback), verified."""
    from ganzoo.hub import pull_checkpoint

    result = pull_checkpoint(name, revision=revision, generator_only=generator_only, force_download=force,
                             progress=not as_json)  # fmt: skip
    if as_json:
        _print_json({"path": str(result.path), "origin": result.origin, "repo_id": result.repo_id,
                     "revision": result.revision, "registry": result.entry.name if result.entry else None,
                     "repaired": list(result.repaired)})  # fmt: skip
        return
    origin = {"cache": "ganzoo cache", "hub": f"Hub repo {result.repo_id}", "upstream": "upstream release (converted)",
              "bundled": "the ganzoo package (bundled, no download)"}[result.origin]  # fmt: skip
    for repaired in result.repaired:
        console.print(f"repaired {repaired}: the cached copy did not match its sha256 and was downloaded again")
    console.print(f"{name}: verified, from {origin} -> {result.path}", soft_wrap=True)


@app.command()
def push(
    checkpoint_dir: Path = typer.Argument(..., help="ganzoo checkpoint directory."),
    repo_id: str = typer.Argument(..., help="Hub repo id, org/name (created if needed)."),
    private: bool = typer.Option(False, "--private", help="Create the repo private."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch to commit to (created if needed)."),
    no_samples: bool = typer.Option(False, "--no-samples", help="Do not generate the samples grid for the card."),
    message: Optional[str] = typer.Option(None, "--message", "-m", help="Commit message."),
) -> None:
    """Upload a checkpoint directory to the Hub in one commit, with a model card and samples grid."""
    from ganzoo.hub import push as push_fn

    url = push_fn(checkpoint_dir, repo_id, private=private, revision=revision, samples=not no_samples,
                  commit_message=message)  # fmt: skip
    console.print(f"pushed {checkpoint_dir} -> {url}", soft_wrap=True)


@app.command()
def mirror(
    sources: list[str] = typer.Argument(..., help="Registry names, Hub repo ids or checkpoint directories."),
    to: Path = typer.Option(..., "--to", help="Mirror root: repos are written to TO/models/ORG/NAME (olah's mirrors-path)."),
    org: Optional[str] = typer.Option(None, "--org", help="Organisation to file them under (default: the registry's)."),
) -> None:
    """Write checkpoints as git repos for a self-hosted Hub mirror (air-gapped clusters)."""
    from ganzoo.hub import mirror as mirror_fn

    for path in mirror_fn(sources, to, org=org):
        console.print(f"wrote {path}", soft_wrap=True)  # paths are copied: no line breaks


# ------------------------------------------------------------------------------------------------
# Metrics and rank (logic in ganzoo/metrics/ and ganzoo/ranking.py)


def _print_warnings():
    """Shows warnings raised inside a command as ``warning: ...`` lines on stderr."""
    import contextlib
    import warnings

    @contextlib.contextmanager
    def manager():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            finally:
                for message in dict.fromkeys(str(w.message) for w in caught):
                    err_console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)

    return manager()


@app.command()
def metrics(
    src: str = typer.Argument(..., help="Checkpoint directory, foreign checkpoint file, registry name or Hub repo id."),
    data: Path = typer.Option(..., "--data", help="Real images: a folder (recursive) or a zip."),
    metric_names: str = typer.Option("fid,kid,pr,dc", "--metrics", help="Comma-separated: fid, kid, pr, dc."),
    num_gen: int = typer.Option(50_000, "--num-gen", help="Generated samples (fid50k_full uses 50k)."),
    feature_extractor: Optional[str] = typer.Option(None, "--feature-extractor", help="One extractor for all metrics (default: inception-fid for FID/KID, vgg16-pr for PR/DC)."),
    seed: int = typer.Option(0, "--seed", help="First sample seed."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Resize the data to this size first (default: the most common size among its images)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ..."),
    strict: bool = typer.Option(False, "--strict", help="Unreadable data files are an error, not a warning."),
    random_weights: bool = typer.Option(False, "--random-weights", help="Random-weight extractors: testing only, values are meaningless."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON here."),
) -> None:
    """Compute FID, KID, precision/recall and density/coverage of a GAN against a dataset."""
    from ganzoo._io import atomic_write_text, check_output
    from ganzoo.metrics.evaluate import evaluate

    if json_out is not None:  # before the work: a result that cannot be written is not computed
        check_output(json_out, suffixes=(".json",), overwrite=True)
    with _print_warnings():
        result = evaluate(src, data, metrics=metric_names, num_gen=num_gen, feature_extractor=feature_extractor, seed=seed,
                          resolution=resolution, device=device, allow_random_weights=random_weights, strict=strict)  # fmt: skip
    table = Table(title=f"{src} vs {data} ({result['num_real']} real, {result['num_gen']} generated)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("features")
    extractors = result["extractors"]
    for key, family in (("fid", "fid"), ("kid", "kid"), ("precision", "pr"), ("recall", "pr"), ("density", "dc"), ("coverage", "dc")):
        if key in result:
            table.add_row(key, f"{result[key]:.6g}", extractors[family])
    console.print(table)
    for note in result["notes"]:
        console.print(f"note: {note}", soft_wrap=True)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(result, indent=2, sort_keys=True) + "\n")
        console.print(f"wrote {json_out}", soft_wrap=True)


@app.command()
def rank(
    target: Path = typer.Option(..., "--target", help="Target images: a folder (recursive) or a zip."),
    candidates: Optional[list[str]] = typer.Option(None, "--candidates", help="Registry names, Hub ids or checkpoint dirs (repeat or comma-separate), or 'all' (default: every registry entry with the target's channel count)."),
    metric: str = typer.Option("fid", "--metric", help="Sort key: fid (default, most reliable), recall, kid or precision."),
    regime: str = typer.Option("generated", "--regime", help="generated (candidate samples) or real (published source-dataset features)."),
    num_gen: int = typer.Option(1000, "--num-gen", help="Samples per candidate."),
    feature_extractor: str = typer.Option("inception-fid", "--feature-extractor", help="inception-fid, vgg16-pr, timm:NAME[@SIZE], or pixels[@SIZE] (no weights: works offline)."),
    seed: int = typer.Option(0, "--seed", help="First sample seed."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Resize the target to this size first (default: the most common size among its images)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ..."),
    strict: bool = typer.Option(False, "--strict", help="Unreadable target files are an error, not a warning."),
    random_weights: bool = typer.Option(False, "--random-weights", help="Random-weight extractor: testing only, values are meaningless."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the ranking as JSON here."),
    plot_out: Optional[Path] = typer.Option(None, "--plot", help="Also write a bar plot (PNG) here."),
) -> None:
    """Rank candidate source checkpoints for finetuning on a target dataset (Grigoryev et al., 2022)."""
    from ganzoo.ranking import candidate_notes, render_table
    from ganzoo.ranking import rank as rank_fn

    with _print_warnings():
        result = rank_fn(target, candidates=candidates, metric=metric, regime=regime, num_gen=num_gen,
                         feature_extractor=feature_extractor, seed=seed, resolution=resolution, device=device,
                         allow_random_weights=random_weights, strict=strict, json_out=json_out, plot_out=plot_out)  # fmt: skip
    console.print(render_table(result, width=console.width))  # narrow: columns left out (named), never cut
    for note in result.notes + candidate_notes(result):
        console.print(f"note: {note}", soft_wrap=True)
    if result.recommended:
        console.print(f"recommended source: [bold]{result.recommended}[/]", soft_wrap=True)
    console.print(f"recipe hint: {result.recipe_hint}", soft_wrap=True, markup=False)
    for path in (json_out, plot_out):
        if path is not None:
            console.print(f"wrote {path}", soft_wrap=True)


@app.command()
def finetune(
    source: Optional[str] = typer.Argument(None, help="Source: registry name, Hub repo id, checkpoint directory or file (not with --resume)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder of target images at the source's resolution."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="full (default) | freezed | adafm | scratch."),
    kimg: Optional[float] = typer.Option(None, "--kimg", help="Train until D has seen this many thousand images (default 100)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory; it becomes the final checkpoint directory."),
    aug: Optional[str] = typer.Option(None, "--aug", help="ada (default) | fixed | none."),
    p: Optional[float] = typer.Option(None, "--p", help="Augmentation probability (--aug fixed; initial p for ada)."),
    aug_preset: Optional[str] = typer.Option(None, "--augpipe", help="Augmentation preset: bgc (default) | bgcfnc | ..."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Minibatch size (default by resolution, as StyleGAN2-ADA)."),
    batch_gpu: Optional[int] = typer.Option(None, "--batch-gpu", help="Images per chunk: gradient accumulation (same result)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of everything (default 0)."),
    snap: Optional[float] = typer.Option(None, "--snap", help="Snapshot interval in kimg (default 50)."),
    metrics: str = typer.Option("", "--metrics", help="Metrics at each snapshot, e.g. fid,kid,pr."),
    num_gen: Optional[int] = typer.Option(None, "--num-gen", help="--metrics: generated samples per snapshot (default 50000)."),
    feature_extractor: Optional[str] = typer.Option(None, "--feature-extractor", help="--metrics: one extractor for all metrics (default: inception-fid for FID/KID, vgg16-pr for PR)."),
    random_weights: bool = typer.Option(False, "--random-weights", help="--metrics: random-weight extractors, testing only, values are meaningless."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run directory from its newest snapshot."),
    freeze_d: Optional[int] = typer.Option(None, "--freeze-d", help="freezed: D layers to freeze (default: 3 highest resolutions)."),
    general_g: Optional[int] = typer.Option(None, "--general-g", help="adafm: G blocks (highest resolutions) with AdaFM."),
    general_d: Optional[int] = typer.Option(None, "--general-d", help="adafm: D blocks next to the image to freeze."),
    allow_random_d: bool = typer.Option(False, "--allow-random-d", help="Start D from scratch when the source has none."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Resample the data to this (the source's) resolution."),
    mirror: bool = typer.Option(False, "--mirror", help="Add x-flips of the data."),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="R1 weight (default 0.0002*res^2/batch)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate of G and D (default 0.0025)."),
    target: Optional[float] = typer.Option(None, "--target", help="ADA target for r_t (default 0.6)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ..."),
) -> None:
    """Adapt a pretrained GAN to your images with a transfer recipe (StyleGAN2-ADA training)."""
    from ganzoo.train.distributed import is_rank_zero, maybe_init_distributed
    from ganzoo.train.runner import finetune as finetune_fn

    device = maybe_init_distributed(device)
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    metric_settings = {"num_gen": num_gen, "feature_extractor": feature_extractor, "allow_random_weights": random_weights}
    if not names and any(metric_settings.values()):
        raise GanzooError("--num-gen, --feature-extractor and --random-weights apply to --metrics; give --metrics too")
    metrics_options = {key: value for key, value in metric_settings.items() if value}  # unset: evaluate's defaults
    with _print_warnings():
        path = finetune_fn(source, data, out, recipe=recipe, kimg=kimg, aug=aug, batch=batch, seed=seed, snap=snap,
                           metrics=names, resume=resume, freeze_d=freeze_d, general_g=general_g, general_d=general_d,
                           allow_random_d=allow_random_d, resolution=resolution, mirror=mirror, p=p, aug_preset=aug_preset,
                           gamma=gamma, lr=lr, batch_gpu=batch_gpu, target=target, device=device,
                           metrics_options=metrics_options or None)  # fmt: skip
    if is_rank_zero():  # under torchrun, one line, not one per process
        console.print(f"finetuned -> {path} (a checkpoint directory: ganzoo generate {path} --out grid.png)", soft_wrap=True)


@app.command()
def pretrain(
    data: Optional[str] = typer.Option(None, "--data", help="synth:KIND[:SEED] (pinknoise, primitives, primitives-s, primitives-ps), or a folder/zip of images."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Image size (a power of two)."),
    kimg: Optional[float] = typer.Option(None, "--kimg", help="Train until D has seen this many thousand images (default 100)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory; it becomes the checkpoint directory."),
    channels: Optional[int] = typer.Option(None, "--channels", help="3 (RGB, default) or 1 (grayscale)."),
    aug: Optional[str] = typer.Option(None, "--aug", help="none (default: synthetic data is unlimited) | ada | fixed."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Minibatch size (default by resolution, as StyleGAN2-ADA)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of everything (default 0)."),
    snap: Optional[float] = typer.Option(None, "--snap", help="Snapshot interval in kimg (default 50)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run directory from its newest snapshot."),
    z_dim: Optional[int] = typer.Option(None, "--z-dim", help="Latent size (default 128)."),
    mapping_layers: Optional[int] = typer.Option(None, "--mapping-layers", help="Mapping network depth (default 2)."),
    channel_base: Optional[int] = typer.Option(None, "--channel-base", help="Channels at resolution r: min(base / r, max) (default 1024)."),
    channel_max: Optional[int] = typer.Option(None, "--channel-max", help="Largest channel count (default 64)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ..."),
) -> None:
    """Train a StyleGAN2 from random init, e.g. on privacy-free synthetic data (--data synth:primitives-ps)."""
    from ganzoo.train.distributed import is_rank_zero, maybe_init_distributed
    from ganzoo.train.pretrain import pretrain as pretrain_fn

    device = maybe_init_distributed(device)
    path = pretrain_fn(data, out, resolution=resolution, kimg=kimg, channels=channels, aug=aug, batch=batch, seed=seed,
                       snap=snap, resume=resume, z_dim=z_dim, w_dim=z_dim, mapping_layers=mapping_layers,
                       channel_base=channel_base, channel_max=channel_max, device=device)  # fmt: skip
    if is_rank_zero():
        console.print(f"pretrained -> {path} (a checkpoint directory: ganzoo generate {path} --out grid.png)", soft_wrap=True)


@app.command()
def version() -> None:
    """Print the ganzoo version."""
    from ganzoo import __version__

    console.print(__version__)


from ganzoo.playground.cli import playground_app  # noqa: E402

app.add_typer(playground_app, name="playground")

from ganzoo.synth.cli import synth as _synth  # noqa: E402  (numpy/PIL are imported when it runs)

app.command("synth")(_synth)

from ganzoo.analysis_cli import analyze_app  # noqa: E402

app.add_typer(analyze_app, name="analyze")

from ganzoo.merge_cli import merge_command  # noqa: E402  (torch is imported when it runs)

app.command("merge")(merge_command)

from ganzoo.cache_cli import cache_app  # noqa: E402

app.add_typer(cache_app, name="cache")


# The usage-error classes of the click that typer runs on: recent typer releases bundle their own
# copy (typer._click), older ones use the click package; either way they live in the module of
# typer.BadParameter. typer.Exit and typer.Abort are whichever classes that typer raises.
_click_exceptions = sys.modules[typer.BadParameter.__module__]


def _usage_error(exc) -> int:
    """Prints a click usage error as the usage line and one error line; returns its exit code."""
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and type(exc).__name__ == "NoArgsIsHelpError":  # a bare `ganzoo` / group
        console.print(ctx.get_help(), markup=False, highlight=False, soft_wrap=True)
        return 0
    if ctx is not None:
        err_console.print(ctx.get_usage(), markup=False, highlight=False, soft_wrap=True)
    message = " ".join(exc.format_message().split())
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (user errors: one line on stderr, exit 1; usage
    errors: the usage line and one error line, exit 2; Ctrl-C: 130)."""
    try:
        # Without standalone mode, typer turns Ctrl-C into a returned 130 (and typer.Exit(code) into
        # a returned code); older typer/click versions raise instead (handled below).
        result = app(args=argv, prog_name="ganzoo", standalone_mode=False)
    except GanzooError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 1
    except OSError as exc:
        # A write that no ganzoo writer wrapped (an append to a log) on a full or read-only disk:
        # still one line. Other OSErrors are bugs and keep their traceback.
        from ganzoo._io import _WRITE_ERRNOS

        if exc.errno not in _WRITE_ERRNOS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        err_console.print(f"error: {where}cannot write ({exc.strerror})", markup=False, highlight=False, soft_wrap=True)
        return 1
    except typer.Abort:
        err_console.print("aborted", markup=False)
        return 1
    except _click_exceptions.UsageError as exc:
        return _usage_error(exc)
    except _click_exceptions.ClickException as exc:
        message = " ".join(exc.format_message().split())
        err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        result = 130
    # A command's own return value is an exit code only if it is an int (not a bool).
    code = result if isinstance(result, int) and not isinstance(result, bool) else 0
    if code == 130:
        err_console.print("interrupted", markup=False)
    return code


def entry_point() -> None:
    """Console-script entry: exits with :func:`main`'s code."""
    sys.exit(main())
