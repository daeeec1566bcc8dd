"""Small models made in the tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ganzoo.checkpoint import GAN
from ganzoo.architectures.stylegan2.networks import Discriminator, Generator


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true``), where no test may skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def threads_for_tests(default: int = 1) -> int:
    """The torch thread count for tests that pin one: ``$GANZOO_TEST_THREADS`` when set (the
    portability check, ``scripts/check_portable.sh``, runs the suite under 1 and 2), else
    ``default``."""
    value = os.environ.get("GANZOO_TEST_THREADS")
    return int(value) if value else default


def assert_same_images(a: np.ndarray, b: np.ndarray, what: object = "") -> None:
    """``a`` and ``b`` are the same uint8 images up to float rounding: at most one level apart,
    on under 1% of the values. For two computations of the same images whose float order may
    differ (other batch shapes, thread counts or processes pick other kernels, on some CPUs), where
    exact equality would test the CPU's rounding; another seed, class or latent is far outside."""
    assert a.shape == b.shape, (what, a.shape, b.shape)
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (what, int(diff.max()), float((diff > 0).mean()))


def fixtures_dir() -> Path:
    """The reference fixtures folder: ``$GANZOO_FIXTURES``, else ``../shared/fixtures`` beside the
    project root. Every test that needs fixtures finds them here; a missing folder fails the test
    (the fixtures are required, never optional)."""
    path = Path(os.environ.get("GANZOO_FIXTURES") or Path(__file__).resolve().parents[1].parent / "shared" / "fixtures")
    if not path.is_dir():
        pytest.fail(f"reference fixtures not found at {path} (set GANZOO_FIXTURES; they are required, not optional)")
    return path


def tiny_gan(c_dim: int = 0, img_channels: int = 3, resolution: int = 16, seed: int = 0, with_d: bool = True) -> GAN:
    """A few-thousand-parameter GAN with non-trivial weights."""
    torch.manual_seed(seed)
    kwargs = dict(channel_base=256, channel_max=16)
    G = Generator(8, c_dim, 8, resolution, img_channels, mapping_kwargs=dict(num_layers=2), synthesis_kwargs=kwargs)
    D = Discriminator(c_dim, resolution, img_channels, epilogue_kwargs=dict(mbstd_group_size=2), **kwargs)
    with torch.no_grad():
        for p in list(G.parameters()) + list(D.parameters()):
            p.add_(torch.randn_like(p) * 0.1)
        G.mapping.w_avg.normal_()
    config = {"license": "cc-by-4.0", "source": {"made_by": "tests"}}
    if c_dim:
        config["class_names"] = [f"class{i}" for i in range(c_dim)]
    return GAN(G.eval(), None, D.eval() if with_d else None, config=config)


def random_images(folder, count: int, size: int = 16, seed: int = 0, name: str = "{i}.png") -> list[np.ndarray]:
    """Writes ``count`` seeded random-noise RGB PNGs into a new ``folder``; returns the images."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.RandomState(seed)
    images = [rng.randint(0, 255, [size, size, 3], dtype=np.uint8) for _ in range(count)]
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / name.format(i=i))
    return images


def ganzoo_script() -> str:
    """The installed ``ganzoo`` console script (what a user's shell runs)."""
    import shutil
    import sys

    script = Path(sys.executable).parent / "ganzoo"
    found = str(script) if script.is_file() else shutil.which("ganzoo")
    assert found, "the ganzoo console script is not installed (pip install -e .)"
    return found
