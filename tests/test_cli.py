"""The command line, end to end: official checkpoint in, exact networks and images out."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.checkpoint import read_config
from ganzoo.cli import main
from ganzoo.architectures.stylegan2.networks import Discriminator, Generator

from helpers import assert_same_images, tiny_gan


@pytest.fixture
def tiny32(shared_fixtures):
    return shared_fixtures / "stylegan2-ada" / "tiny32" / "tiny32-snapshot.pkl"


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_generate_grid_from_official_pickle_is_deterministic(tmp_path, capsys, tiny32):
    code, out, err = run(capsys, "generate", tiny32, "--seeds", "0-15", "--trunc", "0.7", "--out", tmp_path / "a.png")
    assert code == 0, err
    run(capsys, "generate", tiny32, "--seeds", "0-15", "--trunc", "0.7", "--out", tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    grid = np.asarray(Image.open(tmp_path / "a.png"))
    assert grid.shape == (128, 128, 3)  # 4x4 grid of 32x32
    expected = ganzoo.load(tiny32).sample(seeds=range(16), truncation_psi=0.7)[5]
    assert np.array_equal(grid[32:64, 32:64], expected)  # seed 5 sits at row 1, column 1


def test_convert_then_generate_matches_and_reproduces_reference(tmp_path, capsys, shared_fixtures, tiny32):
    code, out, err = run(capsys, "convert", tiny32, tmp_path / "ckpt", "--license", "nvidia-source-code-license-nc")
    assert code == 0, err
    config = read_config(tmp_path / "ckpt")
    assert config["source"]["format"] == "stylegan2-ada-pkl"
    assert config["source"]["sha256"] == "9ab6a441a9a8aa301a6b40d8bbd226b11e225f3f1edd2eed44fac794d694e1c6"
    assert config["license"] == "nvidia-source-code-license-nc"
    assert sorted(config["files"]) == ["discriminator.safetensors", "generator.safetensors", "generator_raw.safetensors"]
    run(capsys, "generate", tmp_path / "ckpt", "--seeds", "1,2", "--outdir", tmp_path / "from_dir")
    run(capsys, "generate", tiny32, "--seeds", "1,2", "--outdir", tmp_path / "from_pkl")
    for name in ("seed0001.png", "seed0002.png"):
        assert (tmp_path / "from_dir" / name).read_bytes() == (tmp_path / "from_pkl" / name).read_bytes()

    gan = ganzoo.load(tmp_path / "ckpt")
    ref = np.load(shared_fixtures / "stylegan2-ada" / "tiny32" / "tiny32-reference.npz")
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    with torch.no_grad():
        img = gan.G_ema(z, c, noise_mode="const", force_fp32=True)
        logits = gan.D(torch.from_numpy(ref["d_input"]), c)
    assert np.abs(img.numpy() - ref["img"]).max() <= 1e-4
    assert np.abs(logits.numpy() - ref["d_logits_input"]).max() <= 1e-4

    code, out, err = run(capsys, "convert", tiny32, tmp_path / "ckpt")
    assert code == 1 and "already exists" in err and len(err.strip().splitlines()) == 1


def test_export_loads_into_plain_networks(tmp_path, capsys):
    gan = tiny_gan(c_dim=3)
    gan.save(tmp_path / "ckpt")
    code, _, err = run(capsys, "export", tmp_path / "ckpt", tmp_path / "out.pt")
    assert code == 0, err
    payload = torch.load(tmp_path / "out.pt", weights_only=True)
    assert set(payload) == {"G_ema", "D", "init_kwargs", "architecture"} and payload["architecture"] == "stylegan2"
    G = Generator(**payload["init_kwargs"]["G_ema"])
    G.load_state_dict(payload["G_ema"], strict=True)
    D = Discriminator(**payload["init_kwargs"]["D"])
    D.load_state_dict(payload["D"], strict=True)
    z = torch.randn(2, 8)
    c = torch.eye(3)[:2]
    with torch.no_grad():
        assert torch.equal(G.eval()(z, c, noise_mode="const"), gan.G_ema(z, c, noise_mode="const"))
        img = torch.randn(2, 3, 16, 16)
        assert torch.equal(D.eval()(img, c), gan.D(img, c))
    assert payload["init_kwargs"]["G_ema"] == gan.G_ema.init_kwargs and payload["init_kwargs"]["D"] == gan.D.init_kwargs


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "{tmp}/missing.pkl", "--out", "{tmp}/x.png"], "no such checkpoint"),
        (["generate", "{tmp}/ckpt", "--seeds", "3-1", "--out", "{tmp}/x.png"], "invalid seeds"),
        (["generate", "{tmp}/ckpt", "--noise-mode", "loud", "--out", "{tmp}/x.png"], "--noise-mode"),
        (["generate", "{tmp}/ckpt", "--class", "1", "--out", "{tmp}/x.png"], "unconditional"),
        (["convert", "{tmp}/missing.pkl", "{tmp}/out"], "no such file"),
        (["convert", "{tmp}/garbage.pkl", "{tmp}/out"], "garbage.pkl"),
        (["export", "{tmp}/missing", "{tmp}/x.pt"], "not a directory"),
    ],
)
def test_user_errors_are_one_line_exit_1(tmp_path, capsys, args, message):
    tiny_gan().save(tmp_path / "ckpt")
    (tmp_path / "garbage.pkl").write_bytes(b"this is not a pickle at all")
    code, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "out").exists()


def test_console_script_and_module_entry(tmp_path):
    tiny_gan().save(tmp_path / "ckpt")
    done = subprocess.run(
        [sys.executable, "-m", "ganzoo", "generate", str(tmp_path / "ckpt"), "--seeds", "0-3", "--out", str(tmp_path / "g.png")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid.shape == (32, 32, 3)  # 2x2 grid of 16x16
    expected = ganzoo.load(tmp_path / "ckpt").sample(seeds=range(4))
    for i, image in enumerate(expected):  # seeds 0-3 in row-major order
        row, col = divmod(i, 2)
        # Another process, whose thread count may differ: the same images up to rounding.
        assert_same_images(grid[16 * row : 16 * row + 16, 16 * col : 16 * col + 16], image, i)
    done = subprocess.run([sys.executable, "-m", "ganzoo", "generate", str(tmp_path / "nope"), "--out", "x.png"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_convert_tf_pickle_and_state_dict_through_cli(tmp_path, capsys, shared_fixtures):
    tf_pkl = shared_fixtures / "stylegan2-tf" / "tf32" / "tf32-tf.pkl"
    code, out, err = run(capsys, "convert", tf_pkl, tmp_path / "tf")
    assert code == 0, err
    assert read_config(tmp_path / "tf")["source"]["format"] == "stylegan2-tf-pkl"
    ref = np.load(shared_fixtures / "stylegan2-tf" / "tf32" / "tf32-reference.npz")
    gan = ganzoo.load(tmp_path / "tf")
    with torch.no_grad():
        img = gan.G_ema.synthesis(torch.from_numpy(ref["ws"]), noise_mode="const")
    assert np.abs(img.numpy() - ref["img"]).max() <= 1e-4
    # export -> state-dict .pt -> convert again: the same networks come back
    assert run(capsys, "export", tmp_path / "tf", tmp_path / "tf.pt")[0] == 0
    code, out, err = run(capsys, "convert", tmp_path / "tf.pt", tmp_path / "tf2")
    assert code == 0, err
    again = ganzoo.load(tmp_path / "tf2")
    assert read_config(tmp_path / "tf2")["generator"] == read_config(tmp_path / "tf")["generator"]
    for role, net in gan.networks().items():
        other = again.networks()[role].state_dict()
        assert all(torch.equal(t, other[k]) for k, t in net.state_dict().items()), role


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ganzoo.registry.list_models", interrupted)
    code, out, err = run(capsys, "list")
    assert code == 130 and err.strip() == "interrupted" and out == ""


def test_nonzero_exit_codes_of_commands_propagate(monkeypatch, capsys):
    import typer

    def exits(*args, **kwargs):
        raise typer.Exit(3)

    monkeypatch.setattr("ganzoo.registry.list_models", exits)
    assert run(capsys, "list")[0] == 3


# ------------------------------------------------------------------------------------------------
# Conventions shared by every command (ganzoo/cli/_common.py)


def _commands(group, prefix=()):
    """(path, click command) of every command under ``group``."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, prefix + (name,))
        else:
            yield prefix + (name,), command


def test_json_means_a_path_or_stdout_in_every_command():
    import typer

    from ganzoo.cli import app

    root = typer.main.get_command(app)
    with_json = {" ".join(path): command for path, command in _commands(root)
                 if any("--json" in param.opts for param in command.params)}  # fmt: skip
    assert {"list", "info", "pull", "metrics", "rank", "merge", "synth", "analyze filters", "analyze distance",
            "cache list", "playground reproduce"} <= set(with_json)  # fmt: skip
    for name, command in with_json.items():
        (param,) = [param for param in command.params if "--json" in param.opts]
        assert not param.is_flag and param.metavar == "PATH" and param.default is None, name
        assert "'-' prints it to stdout" in param.help, name


def test_json_dash_is_stdout_only_and_json_path_writes_the_same_data(tmp_path, capsys):
    code, out, err = run(capsys, "list", "disc*", "--json", "-")
    assert code == 0 and err == "", err
    listed = json.loads(out)  # stdout is the JSON document and nothing else
    assert [row["name"] for row in listed] == ["discs-stylegan2-32"]
    code, out, err = run(capsys, "list", "disc*", "--json", tmp_path / "l.json")
    assert code == 0, err
    assert "discs-stylegan2-32" in out and f"wrote {tmp_path / 'l.json'}" in out  # the table, and where the JSON went
    assert json.loads((tmp_path / "l.json").read_text()) == listed
    code, out, err = run(capsys, "info", "discs", "--json", "-")
    assert code == 0 and json.loads(out)["name"] == "discs-stylegan2-32"
    code, out, err = run(capsys, "list", "--json", tmp_path / "l.txt")  # the output rule: a .json name
    assert code == 1 and "l.txt: .txt is not a format" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "list")  # the console is quiet for `--json -` only, not for later commands
    assert code == 0 and "discs-stylegan2-32" in out


def test_library_warnings_are_one_line_each_once_in_every_command(monkeypatch, capsys):
    import warnings

    from ganzoo.data import MixedImagesWarning

    def noisy(pattern=None):
        for _ in range(3):
            warnings.warn(MixedImagesWarning("3 images are grayscale,\n   converted to RGB"))
        warnings.warn("something else", UserWarning)
        warnings.warn("for developers only", DeprecationWarning)
        return []

    monkeypatch.setattr("ganzoo.registry.list_models", noisy)
    code, out, err = run(capsys, "list", "--json", "-")
    assert code == 0 and json.loads(out) == []
    assert err.splitlines() == ["warning: 3 images are grayscale, converted to RGB", "warning: something else"]
    code, out, err = run(capsys, "list")  # the next command shows them again
    assert err.splitlines() == ["warning: 3 images are grayscale, converted to RGB", "warning: something else"]


def test_playground_seeds_is_the_old_spelling_of_num_seeds(tmp_path, capsys):
    code, out, err = run(capsys, "playground", "reproduce", "--seeds", "0", "--out", tmp_path / "p")
    assert code == 1 and err.splitlines() == [
        "warning: --seeds is deprecated in playground reproduce; use --num-seeds",
        "error: --num-seeds must be at least 1, not 0"]  # fmt: skip
    assert not (tmp_path / "p").exists()
