"""The ``ganzoo`` command line: parse arguments, call the public API, print with rich.

Every :class:`ganzoo.errors.GanzooError` becomes one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Optional

import click
import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ganzoo.errors import GanzooError

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
    out_dir: Path = typer.Argument(..., help="Checkpoint directory to write."),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON with 'generator'/'discriminator' kwargs (state-dict files)."),
    license: str = typer.Option("unknown", "--license", help="License of the weights, recorded in config.json."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT_DIR if it exists."),
) -> None:
    """Convert a foreign checkpoint safely (no code from it runs) into a ganzoo checkpoint directory."""
    from ganzoo.convert import convert as convert_fn

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


@app.command()
def version() -> None:
    """Print the ganzoo version."""
    from ganzoo import __version__

    console.print(__version__)


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
