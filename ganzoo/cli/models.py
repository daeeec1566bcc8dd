"""``ganzoo list``, ``info``, ``pull``, ``convert``, ``export``, ``generate``: the registry, and
checkpoints in and images out.

``list`` and ``info`` import neither torch nor huggingface_hub, so they answer in a fraction of a
second; the other commands import what they need when they run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich import box
from rich.table import Table

from ganzoo._console import fitted_table, print_unfitted
from ganzoo.cli._common import (
    apply_threads,
    console,
    err_console,
    json_option,
    json_output,
    note,
    say,
    threads_option,
    usage_error,
)
from ganzoo.errors import GanzooError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


def register(app: typer.Typer) -> None:
    app.command("list")(list_command)
    app.command()(info)
    app.command()(pull)
    app.command()(convert)
    app.command()(export)
    app.command()(generate)


# ------------------------------------------------------------------------------------------------
# The registry: list, info, pull


def _license_text(entry) -> str:
    return entry.license_name if entry.license == "other" else entry.license


def list_command(
    pattern: Optional[str] = typer.Argument(None, help="Filter: shell pattern ('ffhq*') or substring, on names and aliases."),
    wide: bool = typer.Option(False, "--wide", help="Every column, however wide the lines get (default: what fits the terminal)."),
    json_out: Optional[str] = json_option("the list"),
) -> None:
    """List the registry's pretrained checkpoints."""
    from ganzoo.registry import list_models, load_registry

    as_json = json_output(json_out)
    registry = load_registry()  # once: each lookup would glob and stat the registry files again
    entries = [registry.entries[name] for name in list_models(pattern)]
    if not entries:
        say(f"no model matches {pattern!r}")
    elif not as_json.stdout:  # the table only where it is shown
        if wide:
            print_unfitted(console, _list_table(entries, []))
            left_out = []
        else:
            table, left_out = fitted_table(lambda left_out: _list_table(entries, left_out), _LIST_OPTIONAL, console.width)
            console.print(table)
        if left_out:
            say(f"left out at {console.width} columns: {', '.join(left_out)} (--wide shows them)")
    as_json.write([{"name": e.name, "aliases": list(e.aliases), "resolution": e.resolution, "dataset": e.dataset.name,
                    "includes": list(e.includes), "hub_repo": e.hub.repo, "license": _license_text(e),
                    "manual_download": bool(e.artifacts) and not e.downloadable, "source": e.source}
                   for e in entries])  # fmt: skip


# The columns of `ganzoo list` that make way, in this order, when the terminal is narrow; the
# name, resolution and license always show, each on one line (never cut or folded).
_LIST_OPTIONAL = ("aliases", "dataset", "D", "get")


def _list_table(entries, left_out: list[str]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    columns = [c for c in ("name", "aliases", "res", "dataset", "D", "license", "get") if c not in left_out]
    for column in columns:
        table.add_column(column, justify="right" if column == "res" else "left", no_wrap=True)
    for e in entries:
        get = "manual" if e.artifacts and not e.downloadable else "bundled" if e.bundled else "hub"
        values = {"name": e.name, "aliases": ", ".join(e.aliases), "res": str(e.resolution), "dataset": e.dataset.name,
                  "D": "yes" if "D" in e.includes else "-", "license": _license_text(e), "get": get}  # fmt: skip
        table.add_row(*(values[c] for c in columns))
    return table


def info(
    name: str = typer.Argument(..., help="Registry name or alias."),
    json_out: Optional[str] = json_option("the entry"),
) -> None:
    """Show everything the registry knows about a checkpoint."""
    from ganzoo.registry import get_entry

    as_json = json_output(json_out)
    entry = get_entry(name)
    rows = [
        ("name", entry.name),
        ("aliases", ", ".join(entry.aliases) or "-"),
        ("architecture", entry.architecture),
        ("resolution", f"{entry.resolution}x{entry.resolution}"),
        ("classes", "unconditional" if entry.c_dim == 0 else (str(entry.c_dim) if entry.c_dim else "not stated")),
        ("networks", ", ".join(entry.includes)),
        ("dataset", entry.dataset.name + (f" ({entry.dataset.size:,} images)" if entry.dataset.size else "")),
        ("hub repo", f"{entry.hub.repo}@{entry.hub.revision}"),
        ("license", _license_text(entry) + (f" ({entry.license_url})" if entry.license_url else "")),
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
    if not as_json.stdout:  # the table only where it is shown
        table = Table(show_header=False, box=None)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")  # URLs must stay whole (folded, not cut with an ellipsis)
        for key, value in rows:
            table.add_row(key, value)
        console.print(table)
    as_json.write(entry.to_dict())


def pull(
    name: str = typer.Argument(..., help="Registry name/alias, or a Hub repo id (org/name) in the ganzoo layout."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch, tag or commit of the Hub repo."),
    generator_only: bool = typer.Option(False, "--generator-only", help="Fetch only the EMA generator."),
    force: bool = typer.Option(False, "--force", help="Download again even when cached."),
    json_out: Optional[str] = json_option("where the checkpoint is and where it came from"),
) -> None:
    """Fetch a checkpoint into the local cache (Hub first, upstream release as fallback), verified."""
    from ganzoo.hub import pull_checkpoint

    as_json = json_output(json_out)  # before the download
    result = pull_checkpoint(name, revision=revision, generator_only=generator_only, force_download=force,
                             progress=not as_json.stdout)  # fmt: skip
    origin = {"cache": "ganzoo cache", "hub": f"Hub repo {result.repo_id}", "upstream": "upstream release (converted)",
              "bundled": "the ganzoo package (bundled, no download)"}[result.origin]  # fmt: skip
    for repaired in result.repaired:
        say(f"repaired {repaired}: the cached copy did not match its sha256 and was downloaded again")
    say(f"{name}: verified, from {origin} -> {result.path}")
    as_json.write({"path": str(result.path), "origin": result.origin, "repo_id": result.repo_id,
                   "revision": result.revision, "registry": result.entry.name if result.entry else None,
                   "repaired": list(result.repaired)})  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Checkpoints: convert, export


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


def convert(
    src: Path = typer.Argument(..., help="Foreign checkpoint: StyleGAN2-ADA .pkl, StyleGAN2 TF .pkl, or torch .pt/.pth."),
    out_dir: Optional[Path] = typer.Argument(None, help="Checkpoint directory to write."),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON with 'generator'/'discriminator' kwargs (state-dict files)."),
    license: Optional[str] = typer.Option(None, "--license", help="License of the weights, recorded in config.json "
                                          "(default: the export sidecar's, else 'unknown')."),
    class_names: Optional[str] = typer.Option(None, "--class-names", help="The classes' names, comma-separated, in "
                                              "class order (default: the export sidecar's, else unnamed)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT_DIR if it exists."),
    as_name: Optional[str] = typer.Option(None, "--as", help="Register SRC as this registry model in ganzoo's cache (OUT_DIR not needed)."),
) -> None:
    """Convert a foreign checkpoint safely (no code from it runs) into a ganzoo checkpoint directory."""
    from ganzoo.conversion import convert as convert_fn

    if as_name is not None:
        if out_dir is not None or config is not None or license is not None or class_names is not None:
            raise GanzooError("convert --as NAME takes no OUT_DIR, --config, --license or --class-names: "
                              "the registry entry says where and how")
        from ganzoo.hub.converting import register_converted

        path = register_converted(src, as_name)
        console.print(f"registered [bold]{src}[/] as [bold]{as_name}[/] -> {path}", soft_wrap=True)
        say(f"ganzoo.load({as_name!r}) now loads it without network")
        return
    if out_dir is None:
        raise GanzooError("convert: give OUT_DIR, or --as NAME to register the file as a registry model")
    names = None
    if class_names is not None:
        names = [name.strip() for name in class_names.split(",")]
        if not all(names) or len(set(names)) != len(names):
            raise GanzooError(f"--class-names {class_names!r}: give distinct, non-empty names separated by commas")
    gan = convert_fn(src, out_dir, config=_read_config_option(config), license=license, overwrite=overwrite,
                     class_names=names)
    source = gan.config["source"]
    console.print(f"converted [bold]{src}[/] ({source['format']}, sha256 {source['sha256'][:12]}…) -> [bold]{out_dir}[/]")
    console.print(_network_table(gan))
    for text in source.get("notes", []):
        note(text)


def export(
    checkpoint_dir: Path = typer.Argument(..., help="ganzoo checkpoint directory, registry name or Hub repo id."),
    out: Path = typer.Argument(..., help="Output: a .pt file of {'G': ..., 'D': ..., 'G_ema': ...} state dicts, or the "
                                          "folder of a family with a release layout of its own (see the README)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
) -> None:
    """Export a checkpoint in the form the official code loads (load_state_dict(strict=True))."""
    from ganzoo.architectures import get_architecture
    from ganzoo.checkpoint import is_checkpoint_dir, read_config
    from ganzoo.conversion import check_export_output, sidecar_path
    from ganzoo.conversion import export as export_fn
    from ganzoo.registry import find_entry

    # Before any download: the architecture (a checkpoint's config.json, a registry entry) says
    # what OUT must be; a Hub repo's is known once it is there (until then: no existing OUT).
    if is_checkpoint_dir(checkpoint_dir):
        architecture = get_architecture(read_config(checkpoint_dir)["architecture"])
    else:
        entry = None if checkpoint_dir.exists() else find_entry(str(checkpoint_dir))
        architecture = get_architecture(entry.architecture) if entry is not None else None
    check_export_output(out, overwrite=overwrite, architecture=architecture)
    if not checkpoint_dir.exists() and not str(checkpoint_dir).startswith((".", "/", "~")):
        from ganzoo.hub import pull_checkpoint

        checkpoint_dir = pull_checkpoint(str(checkpoint_dir)).path  # a registry name or Hub repo
    written = export_fn(checkpoint_dir, out, overwrite=overwrite)
    files = f" ({', '.join(sorted(p.name for p in written.iterdir()))})" if written.is_dir() else ""
    say(f"wrote {written}{files}")
    if not written.is_dir():
        say(f"wrote {sidecar_path(written)} (class names and license, for ganzoo convert)")


# ------------------------------------------------------------------------------------------------
# Images out: generate


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
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from ganzoo._progress import progress

    step = max(int(batch_size), 1) * 4
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with progress(*columns, console=err_console, disable=len(seeds) < PROGRESS_SEEDS, unit="images",
                  rate_unit="img/s") as bar:  # fmt: skip
        task = bar.add_task("generate", total=len(seeds))
        for start in range(0, len(seeds), step):
            chunk = seeds[start : start + step]
            yield chunk, gan.sample(seeds=chunk, batch_size=batch_size, **options)
            bar.advance(task, len(chunk))


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
    threads: Optional[int] = threads_option(),
    compile_: bool = typer.Option(False, "--compile", help="Run the generator through torch.compile (inductor): pays a one-time compilation (cached on disk), then faster; pixels agree up to rounding."),
) -> None:
    """Generate images from a GAN: a grid (--out) or one PNG per seed (--outdir)."""
    if (out is None) == (outdir is None):
        usage_error("give exactly one of --out FILE.png or --outdir DIR")
    from ganzoo.api import load
    from ganzoo.checkpoint import parse_seeds

    if noise_mode not in ("const", "random", "none"):
        raise GanzooError(f"--noise-mode must be const, random or none, not {noise_mode!r}")
    from ganzoo.checkpoint import check_sampling_options
    from ganzoo.train.checks import check_device

    check_device(device)  # one line before any work, as training does
    apply_threads(threads)
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
    if gan.device.type == "cpu":
        from ganzoo._malloc import keep_freed_memory

        keep_freed_memory()  # this process only samples: large buffers are reused, not mapped anew
    if out is not None and _IMAGE_FORMATS[out.suffix.lower()] == "JPEG" and gan.metadata.channels == 4:
        raise GanzooError(f"{out}: JPEG has no alpha channel and {src} makes RGBA images; use a .png name")
    check_sampling_options(gan.architecture.name, gan.metadata, trunc, noise_mode, names=("--trunc", "--noise-mode"))
    class_idx = gan.class_index(class_, option="--class")  # errors name the CLI's option, not the keyword
    chunks = _sample_chunks(gan, seed_list, batch_size, truncation_psi=trunc, class_idx=class_idx, noise_mode=noise_mode,
                            compile=compile_)  # fmt: skip
    if out is not None:
        import numpy as np

        images = np.concatenate([images for _, images in chunks])
        _save_image(_to_pil(_grid(images)[None])[0], out)
        say(f"wrote {out} ({len(seed_list)} images)")
    else:
        with atomic_directory(outdir, overwrite=overwrite) as tmp:  # all images or none
            for chunk, images in chunks:  # written as they come: memory does not grow with the seeds
                for seed, image in zip(chunk, _to_pil(images)):
                    image.save(tmp / f"seed{seed:04d}.png", format="PNG")
        say(f"wrote {len(seed_list)} images to {outdir}")
