"""The ``ganzoo`` command line: parse arguments, call the public API, print with rich.

Every :class:`ganzoo.errors.GanzooError` becomes one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import click
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
)
console = Console()
err_console = Console(stderr=True)


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
    for role, net in gan.networks().items():
        n_params = sum(t.numel() for t in net.state_dict().values())
        kwargs = net.init_kwargs
        settings = f"{kwargs['img_resolution']}px, {kwargs['img_channels']} ch, c_dim={kwargs['c_dim']}"
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
    from ganzoo.convert import convert as convert_fn

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
    checkpoint_dir: Path = typer.Argument(..., help="ganzoo checkpoint directory."),
    out: Path = typer.Argument(..., help="Output .pt file: {'G': ..., 'D': ..., 'G_ema': ...} state dicts."),
) -> None:
    """Export a checkpoint directory as a plain state-dict file the official code loads."""
    from ganzoo.convert import export as export_fn

    export_fn(checkpoint_dir, out)
    console.print(f"wrote {out}")


def _to_pil(images: np.ndarray):
    from PIL import Image

    channels = images.shape[-1]
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels)
    if mode is None:
        raise GanzooError(f"cannot write {channels}-channel images as PNG")
    return [Image.fromarray(img[..., 0] if channels == 1 else img, mode) for img in images]


def _grid(images: np.ndarray) -> np.ndarray:
    import numpy as np  # imported here: `ganzoo list`/`info` must start without numpy or torch

    n, h, w, c = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros([rows * h, cols * w, c], dtype=np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, cols)
        grid[r * h : (r + 1) * h, col * w : (col + 1) * w] = img
    return grid


def _save_png(image, path: Path) -> None:
    from ganzoo._io import atomic_path

    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


@app.command()
def generate(
    src: str = typer.Argument(..., help="Checkpoint directory or foreign checkpoint file."),
    seeds: str = typer.Option("0-15", "--seeds", help="Seeds, e.g. '0-15' or '1,5,9'."),
    trunc: float = typer.Option(1.0, "--trunc", help="Truncation psi (1 = off)."),
    class_: Optional[str] = typer.Option(None, "--class", help="Class index or name (conditional models)."),
    noise_mode: str = typer.Option("const", "--noise-mode", help="const | random | none."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write one PNG grid here."),
    outdir: Optional[Path] = typer.Option(None, "--outdir", help="Write one PNG per seed here (seedNNNN.png)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    batch_size: int = typer.Option(8, "--batch-size", help="Images per forward pass (does not change the result)."),
) -> None:
    """Generate images from a GAN: a grid (--out) or one PNG per seed (--outdir)."""
    from ganzoo.api import load
    from ganzoo.checkpoint import parse_seeds

    if (out is None) == (outdir is None):
        raise GanzooError("generate: give exactly one of --out FILE.png or --outdir DIR")
    if noise_mode not in ("const", "random", "none"):
        raise GanzooError(f"--noise-mode must be const, random or none, not {noise_mode!r}")
    seed_list = parse_seeds(seeds)
    gan = load(src, device=device)
    images = gan.sample(seeds=seed_list, truncation_psi=trunc, class_idx=class_, noise_mode=noise_mode,
                        batch_size=batch_size)  # fmt: skip
    if out is not None:
        _save_png(_to_pil(_grid(images)[None])[0], out)
        console.print(f"wrote {out} ({len(seed_list)} images)")
    else:
        outdir.mkdir(parents=True, exist_ok=True)
        for seed, image in zip(seed_list, _to_pil(images)):
            _save_png(image, outdir / f"seed{seed:04d}.png")
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
                      "manual_download": bool(e.artifacts) and not e.downloadable} for e in entries])  # fmt: skip
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
        manual = " (manual download)" if e.artifacts and not e.downloadable else ""
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
    origin = {"cache": "ganzoo cache", "hub": f"Hub repo {result.repo_id}", "upstream": "upstream release (converted)"}[result.origin]
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


@app.command()
def version() -> None:
    """Print the ganzoo version."""
    from ganzoo import __version__

    console.print(__version__)


from ganzoo.playground.cli import playground_app  # noqa: E402

app.add_typer(playground_app, name="playground")


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (user errors: one line on stderr, exit 1)."""
    try:
        app(args=argv, prog_name="ganzoo", standalone_mode=False)
    except GanzooError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 1
    except click.exceptions.Abort:
        err_console.print("aborted", markup=False)
        return 1
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        return 130
    return 0


def entry_point() -> None:
    """Console-script entry: exits with :func:`main`'s code."""
    sys.exit(main())
