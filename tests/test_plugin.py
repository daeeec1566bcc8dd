"""An architecture installed as its own package works like a built-in one.

``tests/plugins/ganzoo-dcgan`` is a DCGAN plug-in package (its own ``pyproject.toml`` with a
``ganzoo.architectures`` entry point; the README's "Add an architecture" section walks through
it). It is installed here into a temporary folder with pip, as a user would install it, and the
CLI is run on one of its checkpoints in fresh processes: generate, save/load, finetune ``full``
and ``scratch``, ``analyze filters``, ``export`` then ``convert``, and ``rank``. Beside it, the
family-neutral parts of the core the plug-in relies on: training options without StyleGAN's
regularization, phases an objective declares, sampling in eval mode, transposed convolutions in
the filter analysis.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from ganzoo.errors import GanzooError

PLUGIN = Path(__file__).resolve().parent / "plugins" / "ganzoo-dcgan"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    """An environment whose Python sees the plug-in installed (pip, from a copy of its source)."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    shutil.copytree(PLUGIN, source)
    site = root / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (site / "ganzoo_dcgan").is_dir() and list(site.glob("ganzoo_dcgan-*.dist-info"))
    paths = [str(site)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}


def _run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_an_installed_plugin_runs_through_the_cli(plugin_env, tmp_path):
    # A source checkpoint of the plug-in's family, saved through the Python API; a BatchNorm
    # generator left in training mode, so sampling must switch to eval mode to match after loading.
    made = _run(plugin_env, tmp_path, "-c", textwrap.dedent("""
        import copy, json, torch
        import ganzoo
        from ganzoo.checkpoint import GAN
        from ganzoo_dcgan import Discriminator, Generator
        torch.manual_seed(0)
        G = Generator(z_dim=32, size=32, width=16)
        with torch.no_grad():  # running statistics that differ from a batch's own
            for m in G.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5); m.running_var.uniform_(0.5, 2.0)
        gan = GAN(G.train(), copy.deepcopy(G), Discriminator(size=32, width=16),
                  config={"license": "CC0-1.0", "source": "a test"})
        before = gan.sample(seeds=[0, 1, 2])
        assert G.training, "sampling left the generator in eval mode"
        gan.save("src")
        after = ganzoo.load("src").sample(seeds=[0, 1, 2])
        print(json.dumps({"same": bool((before == after).all()), "architecture": ganzoo.load("src").architecture.name}))
    """))
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout.splitlines()[-1]) == {"same": True, "architecture": "dcgan"}

    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    from PIL import Image

    for i in range(16):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "data" / f"{i}.png")

    def cli(*args: str) -> str:
        done = _run(plugin_env, tmp_path, "-m", "ganzoo", *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        return done.stdout + done.stderr

    cli("generate", "src", "--seeds", "0-3", "--out", "grid.png")
    assert Image.open(tmp_path / "grid.png").size[0] > 32
    for recipe in ("full", "scratch"):
        out = cli("finetune", "src", "--data", "data", "--recipe", recipe, "--kimg", "0.032", "--batch", "8", "--out", recipe)
        assert "finetuned" in out
        config = json.loads((tmp_path / recipe / "config.json").read_text())
        assert config["architecture"] == "dcgan" and config["lineage"][-1]["recipe"] == recipe
    cli("analyze", "filters", "src", "full", "--json", "filters.json")
    models = json.loads((tmp_path / "filters.json").read_text())["models"]
    g_rows = {row["name"]: row for row in models[0]["G"]}
    assert g_rows["ups.0.weight"]["shape"] == [64, 32, 4, 4] and len(models) == 2  # transposed: 32 output filters
    cli("export", "full", "full.pt")
    cli("convert", "full.pt", "back")
    cli("generate", "back", "--seeds", "0-3", "--out", "back.png")
    cli("generate", "full", "--seeds", "0-3", "--out", "full.png")
    assert (tmp_path / "back.png").read_bytes() == (tmp_path / "full.png").read_bytes()
    ranked = cli("rank", "--target", "data", "--candidates", "src,full", "--feature-extractor", "pixels", "--num-gen", "32")
    assert "least far from the target, with low confidence" in ranked  # pixel features: a softened pick


def test_a_broken_plugin_is_one_line_naming_it(plugin_env, tmp_path):
    site = tmp_path / "site"
    (site / "broken_gan").mkdir(parents=True)
    (site / "broken_gan" / "__init__.py").write_text("raise ImportError('needs a library that is not installed')\n")
    dist = site / "broken_gan-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-gan\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ganzoo.architectures]\nbrokengan = broken_gan\n")
    env = {**plugin_env, "PYTHONPATH": os.pathsep.join([str(site), plugin_env["PYTHONPATH"]])}
    made = _run(env, tmp_path, "-c", "import torch, ganzoo_dcgan as d; from ganzoo.checkpoint import GAN; "
                "GAN(d.Generator(size=8, width=4).eval(), None, None, config={'license': 'CC0-1.0'}).save('ck')")
    assert made.returncode == 0, made.stderr
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    (tmp_path / "ck" / "config.json").write_text(json.dumps({**config, "architecture": "brokengan"}))
    done = _run(env, tmp_path, "-m", "ganzoo", "generate", "ck", "--out", "x.png")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "plug-in 'brokengan' (broken-gan) failed to load: ImportError: needs a library" in done.stderr, done.stderr
    listed = _run(env, tmp_path, "-c", "from ganzoo.architectures import architecture_names as a; print(a())")
    assert "brokengan" in listed.stdout and "dcgan" in listed.stdout  # named without importing


# ----------------------------------------------------------------------------------------------
# The family-neutral core under the plug-in


def test_training_options_are_family_neutral_and_families_bring_their_schedule():
    from ganzoo.architectures import get_architecture
    from ganzoo.train.loop import TrainingOptions

    neutral = TrainingOptions()
    assert (neutral.pl_weight, neutral.style_mixing_prob, neutral.r1_gamma) == (0.0, 0.0, 0.0)
    assert neutral.G_reg_interval is None and neutral.D_reg_interval is None
    sg2 = get_architecture("stylegan2")
    kwargs = {"z_dim": 8, "w_dim": 8, "c_dim": 0, "img_resolution": 16, "img_channels": 3}
    opts = TrainingOptions.for_architecture(sg2, kwargs, 4, lr_G=0.001)
    assert (opts.pl_weight, opts.G_reg_interval, opts.D_reg_interval, opts.style_mixing_prob) == (2.0, 4, 16, 0.9)
    assert opts.r1_gamma is None and opts.lr_G == 0.001 and opts.batch == 4  # the user's value wins


def test_the_loop_asks_an_objective_only_for_its_phases():
    from ganzoo.train.loop import _check_phases, TrainingOptions

    class TwoPhases:
        phases = ("Gmain", "Dmain")

    assert _check_phases("mine", TwoPhases(), TrainingOptions(), 0.0) == ("Gmain", "Dmain")
    with pytest.raises(GanzooError, match="no Greg phase.*pl_weight"):
        _check_phases("mine", TwoPhases(), TrainingOptions(pl_weight=2.0, G_reg_interval=4), 0.0)
    with pytest.raises(GanzooError, match="no Dreg phase.*r1_gamma"):
        _check_phases("mine", TwoPhases(), TrainingOptions(D_reg_interval=16), 1.0)
    # R1 inside D's main phase (no separate interval) needs no Dreg phase.
    assert _check_phases("mine", TwoPhases(), TrainingOptions(D_reg_interval=None), 1.0)


@pytest.mark.parametrize("family", ["stylegan2", "gpgan", "biggan"])
def test_an_unknown_phase_is_a_ganzoo_error(family):
    from ganzoo.architectures.biggan.objective import BigGANLoss
    from ganzoo.architectures.gpgan.objective import GANStabilityLoss
    from ganzoo.architectures.stylegan2.objective import StyleGAN2Loss

    cls = {"stylegan2": StyleGAN2Loss, "gpgan": GANStabilityLoss, "biggan": BigGANLoss}[family]
    G = torch.nn.Linear(1, 1)
    loss = cls.__new__(cls)  # the phase dispatch only: no networks needed
    loss.G = loss.D = G
    with pytest.raises(GanzooError, match="no phase 'Gextra'"):
        cls.accumulate(loss, "Gextra", None, None, torch.zeros([2, 4]), torch.zeros([2, 0]), 1.0, torch.Generator())


def test_filter_similarity_reads_transposed_convolutions_by_output_filter():
    from ganzoo.analysis import filter_similarity

    torch.manual_seed(0)
    up = torch.nn.ConvTranspose2d(2, 5, 3)  # weight [in 2, out 5, 3, 3]
    rows = filter_similarity(torch.nn.Sequential(up))
    out_filters = up.weight.detach().transpose(0, 1).reshape(5, -1).double()
    unit = torch.nn.functional.normalize(out_filters, dim=1)
    gram = unit @ unit.T
    assert rows[0]["shape"] == [2, 5, 3, 3]
    assert rows[0]["mean_similarity"] == pytest.approx(float((gram.sum() - gram.trace()) / 20))
