"""Every registered architecture through the generic paths, from its upstream fixture: convert
(restricted unpickler) -> checkpoint directory -> load -> sample -> rank (pixels) -> analyze -> export ->
the exported state dicts load strictly into freshly built networks of that architecture ->
model card; then finetune with every recipe the architecture lists, each run's push prepared as
``ganzoo push`` prepares it (a dry run: the files are written locally and loaded back), and
merge's conditioning and a tiny merge for the mergeable ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ganzoo
from ganzoo.architectures import architecture_names, get_architecture
from ganzoo.cli import main
from helpers import random_images

pytestmark = pytest.mark.usefixtures("one_thread")

# architecture -> its upstream fixture (a snapshot as the upstream training loop writes it)
FIXTURES = {
    "stylegan2": "stylegan2-ada/tiny32/tiny32-snapshot.pkl",
    "stylegan3": "stylegan3/sg3t32/sg3t32-snapshot.pkl",
    "biggan": "biggan/biggan64",
    "gpgan": "gpgan/resnet2-32/gpgan-resnet2-32-model.pt",
}


def test_the_stylegan_families_train_and_merge():
    # A family may land before its training hooks (recipes = (): refused in one line); these do.
    for name in ("stylegan2", "stylegan3"):
        assert set(get_architecture(name).recipes) == {"full", "freezed", "adafm", "scratch"}
        assert get_architecture(name).mergeable


def test_every_builtin_architecture_with_its_own_networks_has_a_fixture_here():
    # The -adafm variants are made by the adafm recipe (tested below), not read from upstream files.
    assert {n for n in architecture_names() if not n.endswith("-adafm")} == set(FIXTURES)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_architecture_through_the_generic_paths(name, shared_fixtures, tmp_path, capsys):
    architecture = get_architecture(name)
    assert main(["convert", str(shared_fixtures / FIXTURES[name]), str(tmp_path / "ckpt")]) == 0
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["architecture"] == name and config["format_version"] == 2
    gan = ganzoo.load(tmp_path / "ckpt")
    assert gan.architecture is architecture and gan.metadata.to_dict() == config["metadata"]
    meta = gan.metadata

    pick = {"class_idx": meta.num_classes - 1} if meta.num_classes else {}  # conditional: one class
    images = gan.sample(seeds=[0, 1, 2, 3], **pick)
    assert images.shape == (4, meta.resolution, meta.resolution, meta.channels) and images.std() > 1
    option = ["--class", str(meta.num_classes - 1)] if meta.num_classes else []
    assert main(["generate", str(tmp_path / "ckpt"), "--seeds", "0-3", *option, "--out", str(tmp_path / "g.png")]) == 0

    random_images(tmp_path / "data", 12, size=meta.resolution)
    capsys.readouterr()
    assert main(["rank", "--target", str(tmp_path / "data"), "--candidates", str(tmp_path / "ckpt"),
                 "--feature-extractor", "pixels", "--num-gen", "16", "--json", str(tmp_path / "rank.json")]) == 0  # fmt: skip
    ranked = json.loads((tmp_path / "rank.json").read_text())
    assert ranked["candidates"][0]["fid"] is not None and ranked["recommended"] == str(tmp_path / "ckpt")

    capsys.readouterr()
    assert main(["analyze", "filters", str(tmp_path / "ckpt"), "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)["models"][0]
    assert report["G"] and report["D"] and all(np.isfinite(row["mean_similarity"]) for row in report["G"] + report["D"])

    assert main(["export", str(tmp_path / "ckpt"), str(tmp_path / "out.pt")]) == 0
    payload = torch.load(tmp_path / "out.pt", weights_only=True)
    for role, net in gan.networks().items():
        fresh = architecture.network_class(role)(**payload["init_kwargs"][role])
        fresh.load_state_dict(payload[role], strict=True)  # what the upstream code does with it
        for key, value in net.state_dict().items():
            assert torch.equal(fresh.state_dict()[key], value), (role, key)

    from ganzoo.modelcard import render_card

    card = str(render_card(config, name="ckpt"))
    assert f"{meta.resolution}" in card and "ganzoo" in card


def _converted(name: str, shared_fixtures, out) -> "ganzoo.GAN":
    from ganzoo.conversion import convert

    convert(shared_fixtures / FIXTURES[name], out)
    return ganzoo.load(out)


def _unconditional_root(name: str, shared_fixtures, out) -> "ganzoo.GAN":
    """Merge's root must be unconditional: the fixture when it is, else the fixture's networks
    rebuilt with one label (GAN_stability's unconditional releases have ``nlabels`` 1), seeded."""
    gan = _converted(name, shared_fixtures, out)
    if not gan.metadata.num_classes:
        return gan
    assert name == "gpgan", f"{name}: give the merge tests an unconditional root"
    kwargs = {role: {**net.init_kwargs, "nlabels": 1} for role, net in gan.networks().items()}
    torch.manual_seed(0)
    nets = {role: get_architecture(name).network_class(role)(**kw) for role, kw in kwargs.items()}
    import shutil

    shutil.rmtree(out)
    ganzoo.GAN(nets["G_ema"], nets["G"], nets["D"], config={"architecture": name}).save(out)
    return ganzoo.load(out)


@pytest.mark.parametrize("name", sorted(n for n in FIXTURES if get_architecture(n).recipes))
def test_every_recipe_of_an_architecture_trains_from_its_fixture(name, shared_fixtures, tmp_path):
    """finetune with every recipe the architecture lists, a few minibatches each: the run
    trains (G_ema moves), saves a checkpoint of the architecture the recipe makes, and that
    checkpoint loads and samples."""
    from ganzoo.train.runner import finetune

    architecture = get_architecture(name)
    source = _converted(name, shared_fixtures, tmp_path / "src")
    meta = source.metadata
    random_images(tmp_path / "data", 8, size=meta.resolution)
    data = tmp_path / "data"
    if meta.num_classes:  # a conditional source trains on labeled data (StyleGAN2-ADA's dataset.json)
        labels = [[f"{i}.png", i % meta.num_classes] for i in range(8)]
        (data / "dataset.json").write_text(json.dumps({"labels": labels}))
    pick = {"class_idx": meta.num_classes - 1} if meta.num_classes else {}
    before = source.sample(seeds=[0], noise_mode="const", **pick)
    source_weights = {k: v.float() for k, v in source.G_ema.state_dict().items() if v.is_floating_point()}
    for recipe in architecture.recipes:
        out = finetune(tmp_path / "src", data, tmp_path / recipe, recipe=recipe, kimg=0.008, batch=4, snap=0.008,
                       progress=False)  # fmt: skip
        trained = ganzoo.load(out)
        expected = f"{name}-adafm" if recipe == "adafm" else name
        assert trained.config["architecture"] == expected, recipe
        assert trained.metadata.resolution == meta.resolution
        after = trained.sample(seeds=[0], noise_mode="const", **pick)
        assert after.shape == before.shape
        if recipe != "scratch":  # a few steps from the source: G_ema moved
            # Measured over the fixtures: the largest move of a G_ema weight is 9.6e-5 (GP-GAN
            # full/freezed, whose EMA keeps 99.9% per step: its images move by one level on 0.3%
            # of the pixels, too little to test) to 0.5 (BigGAN); rounding is below 1e-7.
            trained_weights = trained.G_ema.state_dict()
            moved = max((trained_weights[k].float() - v).abs().max().item() for k, v in source_weights.items()
                        if k in trained_weights and trained_weights[k].shape == v.shape)  # fmt: skip
            assert moved > 1e-6, (recipe, moved)
        _push_dry_run(out, tmp_path / f"{recipe}-pushed", name, after, pick)
        settings = trained.config["lineage"][-1]["settings"]
        if recipe == "freezed":
            assert settings["freeze_d"] > 0
            frozen = [k for k, v in trained.D.named_buffers() if k.endswith(".weight")]
            assert frozen, "FreezeD left no D layer frozen"


def _push_dry_run(checkpoint, where, name: str, images: np.ndarray, pick: dict) -> None:
    """Everything ``ganzoo push`` does before the network: the commit's files (verified, in their
    published form: AdaFM folded into the plain family), written out, load as ``name`` and give
    the checkpoint's images."""
    from ganzoo.publish import prepare_upload

    files = prepare_upload(checkpoint).commit_files("org/model")
    assert {"config.json", "generator.safetensors", "README.md", "samples.png"} <= set(files)
    where.mkdir()
    for file, data in files.items():
        (where / file).write_bytes(data.read_bytes() if hasattr(data, "read_bytes") else data)
    pushed = ganzoo.load(where)
    assert pushed.config["architecture"] == name
    sampled = pushed.sample(seeds=[0], noise_mode="const", **pick)
    assert np.abs(sampled.astype(int) - images.astype(int)).max() <= 1  # folding is exact up to rounding
    assert "library_name: ganzoo" in files["README.md"].decode()


@pytest.mark.parametrize("name", sorted(n for n in FIXTURES if get_architecture(n).mergeable))
def test_mergeable_architecture_is_made_conditional_keeping_its_output(name, shared_fixtures, tmp_path):
    """merge's first step on this architecture: class-conditional G and D that give, for every
    class, the unconditional networks' images and logits."""
    from ganzoo.cocktail import make_conditional

    gan = _unconditional_root(name, shared_fixtures, tmp_path / "src")
    cond = make_conditional(gan, ["a", "b", "c"], seed=3)
    assert cond.metadata.num_classes == 3 and cond.architecture is gan.architecture
    z = torch.randn([2, gan.metadata.latent_dim], generator=torch.Generator().manual_seed(0))
    arch = gan.architecture
    plain = arch.generate(gan.G_ema, z, torch.zeros([2, 0]), seeds=(0, 1), truncation_psi=1.0, truncation_cutoff=None,
                          noise_mode="const")  # fmt: skip
    logits = gan.D(plain, torch.zeros([2, 0]))
    for k in range(3):
        c = torch.nn.functional.one_hot(torch.tensor([k, k]), 3).float()
        img = arch.generate(cond.G_ema, z, c, seeds=(0, 1), truncation_psi=1.0, truncation_cutoff=None, noise_mode="const")
        torch.testing.assert_close(img, plain, atol=1e-4, rtol=0)
        torch.testing.assert_close(cond.D(plain, c), logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(n for n in FIXTURES if get_architecture(n).mergeable))
def test_merge_runs_on_the_architecture(name, shared_fixtures, tmp_path):
    """A (tiny) cocktail merge of two copies of the fixture: a conditional checkpoint of the
    same architecture that loads and samples every class."""
    from ganzoo.cocktail import merge

    _unconditional_root(name, shared_fixtures, tmp_path / "a")
    _unconditional_root(name, shared_fixtures, tmp_path / "b")
    out = merge([tmp_path / "a", tmp_path / "b"], tmp_path / "merged", root_kimg=0.008, merge_kimg=0.008, batch=4,
                class_names=["a", "b"], progress=False)  # fmt: skip
    merged = ganzoo.load(out)
    assert merged.config["architecture"] == name and merged.metadata.num_classes == 2
    assert merged.sample(seeds=[0], class_idx="b").shape[0] == 1


def test_each_architecture_names_formats_its_readers_know_and_the_registry_agrees():
    from ganzoo.readers import FORMATS
    from ganzoo.registry import ARTIFACT_FORMATS, get_entry, list_models

    assert set(ARTIFACT_FORMATS) == set(FORMATS)  # the registry's list (no torch there) is the readers'
    for name in architecture_names():
        assert set(get_architecture(name).formats) <= set(FORMATS), name
    for model in list_models():
        entry = get_entry(model)
        for artifact in entry.artifacts:
            assert artifact.format in get_architecture(entry.architecture).formats, (model, artifact.format)


def test_a_plug_in_registers_a_reader_for_its_own_format(tmp_path, monkeypatch):
    """A reader registered by a plug-in is asked first: its files convert through the same
    command as the built-in formats, and unknown files still get one line."""
    import ganzoo.readers as readers
    from ganzoo.readers import Reader, register_reader
    from ganzoo.readers.base import ForeignCheckpoint, NetworkSpec
    from helpers import tiny_gan

    source = tiny_gan(seed=4)
    magic = b"TOYGAN01"

    def read(path, config):
        payload = torch.load(path.with_suffix(".pt"), weights_only=True)
        spec = NetworkSpec(class_name="Generator", init_kwargs=payload["kwargs"], state_dict=payload["state"])
        return ForeignCheckpoint(format="toygan", G_ema=spec, G=None, D=None, architecture="stylegan2")

    monkeypatch.setattr(readers, "_READERS", list(readers._READERS))
    register_reader(Reader("toygan", lambda path, head: head.startswith(magic), read))
    (tmp_path / "g.toy").write_bytes(magic)
    torch.save({"kwargs": source.G_ema.init_kwargs, "state": source.G_ema.state_dict()}, tmp_path / "g.pt")
    assert readers.detect_format(tmp_path / "g.toy") == "toygan"
    assert main(["convert", str(tmp_path / "g.toy"), str(tmp_path / "ckpt")]) == 0
    loaded = ganzoo.load(tmp_path / "ckpt")
    assert loaded.config["source"]["format"] == "toygan"
    assert np.array_equal(loaded.sample(seeds=[1]), source.sample(seeds=[1]))
    (tmp_path / "junk.bin").write_bytes(b"no format at all")
    assert main(["convert", str(tmp_path / "junk.bin"), str(tmp_path / "junk")]) == 1
