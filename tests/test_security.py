"""The safe readers against a corpus of malicious files (see tests/malicious.py).

Every reader must refuse every file with a one-line UnsafeCheckpointError or ConversionError that
names the file, and nothing in the corpus may run: the marker file its payloads would create must
never exist. A liveness test checks, in a throwaway process, that the code-execution payloads do
run when loaded the unsafe way, so the corpus cannot silently rot into harmless files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ganzoo.readers.safe_pickle import PersistentObject, TFNetwork, load_pickle, load_torch_file
from ganzoo.architectures.stylegan2.ada_pickle import read_stylegan2_ada_pickle
from ganzoo.errors import ConversionError, GanzooError, UnsafeCheckpointError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from malicious import CODE_EXECUTION, INERT_STAND_INS, build_corpus  # noqa: E402

U, C = UnsafeCheckpointError, ConversionError
REFUSED_GLOBAL = "refused global '{}'"

# name -> (load_pickle outcome, load_torch_file outcome): error class and a message fragment.
EXPECTED = {
    "os_system.pkl": ((U, REFUSED_GLOBAL.format("os.system")),) * 2,
    "inst_os_system.pkl": ((U, REFUSED_GLOBAL.format("os.system")),) * 2,
    "subprocess_popen.pkl": ((U, REFUSED_GLOBAL.format("subprocess.Popen")),) * 2,
    "builtins_eval.pkl": ((U, REFUSED_GLOBAL.format("builtins.eval")),) * 2,
    "builtins_exec.pkl": ((U, REFUSED_GLOBAL.format("builtins.exec")),) * 2,
    "importlib_import_module.pkl": ((U, REFUSED_GLOBAL.format("importlib.import_module")),) * 2,
    "getattr_chain.pkl": ((U, REFUSED_GLOBAL.format("builtins.getattr")),) * 2,
    "dotted_global.pkl": ((U, REFUSED_GLOBAL.format("torch.serialization.os.system")),) * 2,
    "persistence_module_src.pkl": (None, (C, "not a torch.save file")),
    "tf_build_module_src.pkl": (None, (C, "not a torch.save file")),
    "load_from_bytes_payload.pkl": ((U, REFUSED_GLOBAL.format("os.system")),) * 2,
    "numpy_object_array.pkl": ((U, "refused numpy dtype 'O8'"),) * 2,
    "nested_marks.pkl": ((U, "nested deeper than"),) * 2,
    "nested_appends.pkl": ((U, "nested deeper than"), (C, "not a torch.save file")),
    "nested_tuple1.pkl": ((U, "nested deeper than"),) * 2,
    "self_reference.pkl": ((U, "contains itself"), (C, "not a torch.save file")),
    "deep_tuple_key.pkl": ((U, "nested deeper than"),) * 2,
    "memo_laughs.pkl": ((U, "billion laughs"), (C, "not a torch.save file")),
    "tensor_out_of_bounds.pkl": ((U, "reads 1,000,000,000,000 elements from a storage of 1"),) * 2,
    "tensor_stride0.pkl": ((U, "allocation budget"),) * 2,
    "legacy_storage_bomb.pkl": ((U, "a storage claims 4,000,000,000,000 bytes"),) * 2,
    "ndarray_bomb.pkl": ((U, "needs 4,000,000,000,000 bytes but its data has 4"),) * 2,
    "truncated.pkl": ((C, "truncated or corrupt pickle (unexpected end of data"),) * 2,
    "torch_zip_reduce.pt": ((C, "zip archive"), (U, REFUSED_GLOBAL.format("posix.system"))),
    "torch_legacy_reduce.pt": ((C, "legacy torch.save file"), (U, REFUSED_GLOBAL.format("posix.system"))),
    "torch_zip_stride0.pt": ((C, "zip archive"), (U, "allocation budget")),
    "torch_zip_truncated.pt": ((C, "zip archive"), (C, "corrupt zip archive")),
}  # fmt: skip

NAMES = sorted(EXPECTED)
READERS = {"load_pickle": load_pickle, "load_torch_file": load_torch_file,
           "read_stylegan2_ada_pickle": read_stylegan2_ada_pickle}  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("malicious")
    marker = root / "MARKER"
    files = build_corpus(root / "corpus", marker)
    return files, marker


def test_expectations_cover_the_corpus(corpus):
    files, _ = corpus
    assert sorted(files) == NAMES
    assert CODE_EXECUTION <= set(files) and INERT_STAND_INS <= CODE_EXECUTION


def check_error(exc: GanzooError, path: Path) -> None:
    message = str(exc)
    assert isinstance(exc, (UnsafeCheckpointError, ConversionError))
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{path}: "), message


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("name", NAMES)
def test_reader_refuses(corpus, name, reader):
    files, marker = corpus
    path = files[name]
    if reader == "load_pickle" and name in INERT_STAND_INS:
        # Read into stand-ins: the embedded source is kept as text and never run.
        result = load_pickle(path)
        assert isinstance(result, (PersistentObject, TFNetwork))
        if isinstance(result, PersistentObject):
            source = result.module_src
        else:
            source = result.state["build_module_src"]
        assert str(marker.resolve()) in source
    else:
        with pytest.raises(GanzooError) as info:
            READERS[reader](path)
        check_error(info.value, path)
        expected = {"load_pickle": EXPECTED[name][0], "load_torch_file": EXPECTED[name][1]}.get(reader)
        if expected is not None:
            cls, fragment = expected
            assert type(info.value) is cls and fragment in str(info.value), str(info.value)
    assert not marker.exists()


def test_readers_accept_file_objects(corpus):
    files, marker = corpus
    with open(files["os_system.pkl"], "rb") as f, pytest.raises(UnsafeCheckpointError) as info:
        load_pickle(f)
    check_error(info.value, files["os_system.pkl"])
    assert not marker.exists()


_UNSAFE_LOADER = textwrap.dedent(
    """
    # Loads corpus entries the UNSAFE way (plain pickle / torch.load(weights_only=False)) with
    # stand-ins for the original torch_utils.persistence and dnnlib.tflib, which execute the
    # source embedded in the file exactly like the originals do. Prints the entries that ran code.
    import pickle, sys, time, warnings
    from pathlib import Path
    warnings.simplefilter("ignore")
    import torch
    corpus, marker = Path(sys.argv[1]), Path(sys.argv[2])
    for name in sys.argv[3:]:
        try:
            if name.endswith(".pt"):
                torch.load(corpus / name, weights_only=False)
            else:
                with open(corpus / name, "rb") as f:
                    pickle.load(f)
        except Exception:
            pass
        for _ in range(100):  # subprocess.Popen runs asynchronously
            if marker.exists():
                print(name, flush=True)
                marker.unlink()
                break
            time.sleep(0.05)
    """
)


def test_corpus_payloads_are_live(tmp_path):
    """The code-execution entries really run code when loaded the unsafe way."""
    marker = tmp_path / "LIVE_MARKER"
    files = build_corpus(tmp_path / "corpus", marker)
    stubs = tmp_path / "stubs"
    (stubs / "torch_utils").mkdir(parents=True)
    (stubs / "dnnlib" / "tflib").mkdir(parents=True)
    for package in ("torch_utils", "dnnlib", "dnnlib/tflib"):
        (stubs / package / "__init__.py").write_text("")
    (stubs / "torch_utils" / "persistence.py").write_text(
        "def _reconstruct_persistent_obj(meta):\n    exec(meta['module_src'], {})\n"
    )
    (stubs / "dnnlib" / "tflib" / "network.py").write_text(
        "class Network:\n    def __setstate__(self, state):\n"
        "        exec(state['build_module_src'], {})\n"
    )
    script = tmp_path / "unsafe_loader.py"
    script.write_text(_UNSAFE_LOADER)
    env = dict(os.environ, PYTHONPATH=str(stubs))
    names = sorted(CODE_EXECUTION)
    run = subprocess.run(
        [sys.executable, str(script), str(files[names[0]].parent), str(marker), *names],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert sorted(run.stdout.split()) == names


# ---------------------------------------------------------------------------------------------
# The same corpus through the command line: `ganzoo convert` and `ganzoo generate` refuse every
# file with one line naming it, exit code 1, no marker, and nothing left in OUT_DIR.


@pytest.fixture(scope="module")
def cli_corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli-corpus")
    marker = directory / "MARKER"
    return build_corpus(directory / "files", marker), marker


def test_cli_refuses_every_corpus_file(cli_corpus, tmp_path, capsys):
    from ganzoo.cli import main

    corpus, marker = cli_corpus
    assert len(corpus) >= 10
    for name, path in sorted(corpus.items()):
        out_dir = tmp_path / f"out-{name}"
        for argv in (["convert", str(path), str(out_dir)], ["generate", str(path), "--out", str(tmp_path / "g.png")]):
            code = main(argv)
            err = capsys.readouterr().err
            assert code == 1, (name, argv[0], err)
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: ") and path.name in lines[0], (name, err)
            assert "Traceback" not in err
        assert not out_dir.exists(), name
        assert not (tmp_path / "g.png").exists(), name
        assert not marker.exists(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temp dirs left behind either
