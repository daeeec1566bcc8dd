"""Tests for the registry (ganzoo.registry, registry/*.toml) and the `list`/`info` commands."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

import ganzoo
from ganzoo import registry
from ganzoo.cli import main
from ganzoo.errors import RegistryError, UnknownModelError
from ganzoo.registry import build_registry, bundled_dir, get_entry, list_models

ALL = list_models()

# What the registry must hold at least (issue: "Real entries with their real upstream URLs").
REQUIRED = {
    "imagenet-stylegan2-128", "imagenet-stylegan2-256", "imagenet-stylegan2-512",
    "ffhq-stylegan2-256", "ffhq-stylegan2-512", "ffhq-stylegan2-1024", "celebahq-stylegan2-256",
    "lsundog-stylegan2-256", "metfaces-stylegan2-1024", "afhqcat-stylegan2-512", "afhqdog-stylegan2-512",
    "afhqwild-stylegan2-512", "brecahad-stylegan2-512", "cifar10-stylegan2-32", "lsuncat-stylegan2-256",
    "lsunchurch-stylegan2-256", "lsunhorse-stylegan2-256", "lsuncar-stylegan2-512",
    "ffhq-stylegan2-config-f-1024", "primitives-ps-stylegan2-256", "primitives-s-stylegan2-256",
    "primitives-stylegan2-256", "pinknoise-stylegan2-256",
    # the StyleGAN3 release, configs T and R
    *(f"{d}-stylegan3-{c}-{r}" for c in "tr" for d, r in [("ffhq", 1024), ("ffhqu", 1024), ("ffhqu", 256),
                                                          ("metfaces", 1024), ("metfacesu", 1024), ("afhqv2", 512)]),
}  # fmt: skip
# Upstream hosts the entries may point at: the releases' own.
KNOWN_HOSTS = {"nvlabs-fi-cdn.nvidia.com", "api.ngc.nvidia.com", "www.dropbox.com", "drive.google.com",
               "s3.eu-central-1.amazonaws.com", "data-efficient-gans.mit.edu"}


def test_registry_holds_the_required_entries():
    assert REQUIRED <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_entry_is_valid_and_its_architecture_resolves(name):
    from ganzoo.architectures import get_architecture

    entry = get_entry(name)
    assert entry.name == name
    architecture = get_architecture(entry.architecture)
    assert architecture.network_class("G_ema").__name__ == "Generator"
    assert architecture.network_class("D").__name__ == "Discriminator"
    assert entry.resolution & (entry.resolution - 1) == 0
    assert entry.paper.title and entry.paper.url.startswith("https://") and entry.paper.bibtex.strip().startswith("@")
    assert entry.license and (entry.license != "other" or entry.license_name)
    assert entry.hub.repo.count("/") == 1 and entry.hub.revision
    # Every entry names its upstream release, or ships inside the package (the starter zoo).
    assert entry.artifacts or (entry.bundled and (bundled_dir(name) / "config.json").is_file())
    for artifact in entry.artifacts:
        assert urllib.parse.urlsplit(artifact.url).hostname in KNOWN_HOSTS
        if artifact.manual_download:
            assert entry.name in artifact.instructions and "ganzoo convert" in artifact.instructions
        if artifact.format != "state-dict-pt" and not artifact.manual_download:
            # Upstream file names are part of the URL: the entry must not rename them.
            assert urllib.parse.urlsplit(artifact.url).path.endswith("/" + artifact.filename)
    for alias in entry.aliases:
        assert get_entry(alias) is entry
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.name = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("name", ALL)
def test_entry_card_renders_and_round_trips(name):
    from huggingface_hub import ModelCard

    from ganzoo.hub import entry_card
    from ganzoo.modelcard import slug

    entry = get_entry(name)
    card = entry_card(entry)
    again = ModelCard(str(card))
    assert again.data.to_dict() == card.data.to_dict()
    data = again.data
    assert data.library_name == "ganzoo" and data.license == entry.license
    assert "gan" in data.tags and entry.architecture in data.tags
    assert data.pipeline_tag in ("unconditional-image-generation", "image-generation")
    assert (entry.dataset.hub_id or slug(entry.dataset.name)) in (data.datasets or [])
    if entry.metrics:
        assert [r.metric_value for r in data.eval_results] == [m.value for m in entry.metrics]
    assert entry.paper.bibtex.strip() in again.text
    assert f'ganzoo.load("{entry.hub.repo}")' in again.text


def test_aliases_for_the_mission_examples():
    assert get_entry("cat").name == "afhqcat-stylegan2-512"
    assert get_entry("dog").name == "afhqdog-stylegan2-512"
    assert get_entry("imagenet").name == "imagenet-stylegan2-256"
    assert get_entry("FFHQ").name == "ffhq-stylegan2-256"
    # cat and dog share one architecture, so `ganzoo merge cat dog` can average them.
    assert get_entry("cat").resolution == get_entry("dog").resolution


def test_list_models_patterns():
    assert list_models("imagenet-stylegan2") == ["imagenet-stylegan2-128", "imagenet-stylegan2-256", "imagenet-stylegan2-512"]
    assert list_models("ffhq*stylegan2*1024") == ["ffhq-stylegan2-1024", "ffhq-stylegan2-config-f-1024"]
    assert list_models("ffhq*stylegan3*") == ["ffhq-stylegan3-r-1024", "ffhq-stylegan3-t-1024", "ffhqu-stylegan3-r-1024",
                                              "ffhqu-stylegan3-r-256", "ffhqu-stylegan3-t-1024", "ffhqu-stylegan3-t-256"]
    assert list_models("cat") == ["afhqcat-stylegan2-512", "lsuncat-stylegan2-256"]  # alias 'cat' + substring
    assert list_models("no-such-thing") == []
    assert ganzoo.list_models() == ALL == sorted(ALL)


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownModelError, match=r"unknown model 'imagenet-256x'; did you mean imagenet-256"):
        get_entry("imagenet-256x")


def _write(tmp_path, text, name="extra.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """
[family]
architecture = "stylegan2"
license = "mit"
paper = { title = "T", authors = "A", year = 2024, url = "https://example.org" }
dataset = { name = "D" }
hub = { repo = "me/x", revision = "main" }
[[models]]
name = "my-gan"
title = "mine"
resolution = 64
aliases = ["mine"]
"""


def test_user_registry_folders_extend_the_registry(tmp_path, monkeypatch):
    _write(tmp_path, GOOD)
    monkeypatch.setenv(registry.REGISTRY_PATH_ENV, str(tmp_path))
    assert "my-gan" in list_models() and get_entry("mine").hub.repo == "me/x"
    assert set(ALL) < set(list_models())


@pytest.mark.parametrize(
    "change, message",
    [
        (("resolution = 64", "resolutoin = 64"), "unknown key 'resolutoin' \\(did you mean 'resolution'\\?\\)"),
        (("resolution = 64", "resolution = 65"), "power of two"),
        (('license = "mit"', 'license = "other"'), "needs a 'license_name'"),
        (('repo = "me/x"', 'repo = "x"'), "org/name"),
        (('architecture = "stylegan2"', 'architecture = "biggan-deep"'), "unknown architecture 'biggan-deep'"),
        (('aliases = ["mine"]', 'aliases = ["mine"]\n[[models.artifacts]]\nurl = "https://e.org/a.pkl"\n'
          'format = "stylegan2-ada-pkl"\nfilename = "a.pkl"\nsha256 = "abc"'), "64 lowercase hex"),
        (('aliases = ["mine"]', 'aliases = ["mine"]\n[[models.artifacts]]\nurl = "https://e.org/a.pkl"\n'
          'format = "pkl"\nfilename = "a.pkl"'), "'format' must be one of"),
        (('aliases = ["mine"]', 'aliases = ["mine"]\n[[models.artifacts]]\nurl = "https://e.org/a.pkl"\n'
          'format = "stylegan2-ada-pkl"\nfilename = "a.pkl"\nmanual_download = true'), "needs 'instructions'"),
        (("resolution = 64", "resolution = true"), "must be an integer, not a boolean"),
        (("[[models]]", "[[models]\n"), "invalid TOML"),
    ],
)
def test_malformed_entries_are_one_clear_registry_error(tmp_path, change, message):
    path = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(RegistryError, match=message) as info:
        build_registry([path])
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_duplicate_names_and_clashing_aliases_are_refused(tmp_path):
    first = _write(tmp_path, GOOD, "a.toml")
    with pytest.raises(RegistryError, match="already defined"):
        build_registry([first, _write(tmp_path, GOOD, "b.toml")])
    clash = GOOD.replace('name = "my-gan"', 'name = "other-gan"')
    with pytest.raises(RegistryError, match="alias 'mine' .* clashes"):
        build_registry([first, _write(tmp_path, clash, "c.toml")])


def test_renamed_models_keep_working_with_a_deprecation_warning(tmp_path):
    path = _write(tmp_path, GOOD + '\n[renamed]\n"old-gan" = "my-gan"\n')
    reg = build_registry([path])
    with pytest.warns(DeprecationWarning, match="'old-gan' is deprecated; use 'my-gan'"):
        assert reg.get("old-gan").name == "my-gan"


def test_entry_kwargs_are_read_only(tmp_path):
    path = _write(tmp_path, GOOD.replace('aliases = ["mine"]', 'aliases = ["mine"]\ngenerator = { z_dim = 512 }'))
    entry = build_registry([path]).get("my-gan")
    with pytest.raises(TypeError, match="read-only"):
        entry.generator["z_dim"] = 1  # type: ignore[index]
    assert json.loads(json.dumps(entry.to_dict()))["generator"] == {"z_dim": 512}


# ------------------------------------------------------------------------------------------------
# CLI


def test_cli_list_and_info_json(capsys):
    assert main(["list", "--json", "-"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in listed] == ALL
    assert main(["info", "imagenet", "--json", "-"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "imagenet-stylegan2-256"
    assert info["artifacts"][0]["url"] == "https://www.dropbox.com/s/7gll7weysn1ull7/imagenet-256-state.pt?dl=0"


def test_list_and_info_json_read_the_registry_once_and_draw_no_table(capsys, monkeypatch):
    """What people run most stays cheap: ``list``/``info --json -`` look the registry up once or
    twice per call, not once per entry (``ganzoo list`` once did it 72 times, each a glob and a
    stat of every registry file), and build no table nobody sees (``scripts/bench_cli.py``
    measures the start-up)."""
    import rich.console

    from ganzoo import registry

    loads, tables = [], []
    real_load = registry.load_registry
    monkeypatch.setattr(registry, "load_registry", lambda: loads.append(1) or real_load())
    real_print = rich.console.Console.print
    monkeypatch.setattr(rich.console.Console, "print",
                        lambda self, *a, **k: tables.extend(x for x in a if type(x).__name__ == "Table") or real_print(self, *a, **k))  # fmt: skip
    for args in (["list", "--json", "-"], ["info", "imagenet", "--json", "-"]):
        loads.clear()
        assert main(args) == 0
        json.loads(capsys.readouterr().out)
        assert len(loads) <= 2 and tables == [], (args, len(loads))
    assert main(["list"]) == 0 and len(tables) == 1  # the table where it is shown
    capsys.readouterr()


def test_cli_info_shows_manual_download_instructions(capsys):
    assert main(["info", "primitives-ps"]) == 0
    out = capsys.readouterr().out
    assert "MANUAL DOWNLOAD" in out and "ganzoo convert" in out


def test_cli_unknown_name_is_one_line_and_exit_1(capsys):
    assert main(["info", "imagenet-255"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown model 'imagenet-255'; did you mean") and "\n" not in err


def test_list_and_info_import_neither_torch_nor_huggingface_hub():
    # A fresh interpreter, as a user's shell would start it.
    code = (
        "import sys, io, contextlib\n"
        "from ganzoo.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['list']) == 0 and main(['info', 'cat']) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'huggingface_hub', 'numpy'))\n"
        "print(heavy)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_bundled_source_is_validated(tmp_path):
    folder = tmp_path / "reg"
    folder.mkdir()
    base = (Path(__file__).resolve().parents[1] / "registry" / "starter.toml").read_text()
    (folder / "mine.toml").write_text(base.replace('source = "bundled"', 'source = "ftp"'))
    with pytest.raises(RegistryError, match="'source' must be one of hub, bundled"):
        build_registry([folder / "mine.toml"])
    (folder / "mine.toml").write_text(base.replace('name = "discs-stylegan2-32"', 'name = "nowhere-stylegan2-32"'))
    with pytest.raises(RegistryError, match="ganzoo/bundled/nowhere-stylegan2-32"):
        build_registry([folder / "mine.toml"])


def test_class_names_come_from_a_shipped_list_or_the_entry_and_must_match_c_dim(tmp_path, monkeypatch):
    from ganzoo.errors import RegistryError
    from ganzoo.registry import get_entry, load_registry

    assert get_entry("imagenet-gpgan-128").class_names[207] == "golden retriever"
    assert len(get_entry("imagenet-biggan-128").class_names) == 1000
    (tmp_path / "bad.toml").write_text('''
[[models]]
name = "two-classes"
title = "t"
architecture = "stylegan2"
license = "mit"
resolution = 32
c_dim = 3
class_names = ["a", "b"]
dataset = { name = "d" }
paper = { title = "p", authors = "a", year = 2024, url = "https://example.org" }
hub = { repo = "org/two", revision = "main" }
''')
    monkeypatch.setenv("GANZOO_REGISTRY_PATH", str(tmp_path))
    with pytest.raises(RegistryError, match="'class_names' has 2 names"):
        load_registry()
