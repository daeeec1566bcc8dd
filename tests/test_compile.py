"""The compiled path (ganzoo.compile: torch.compile with inductor) against the eager reference.

Every test compiles tiny StyleGAN2 networks on CPU; inductor's on-disk cache is one folder for
the whole session (``$TORCHINDUCTOR_CACHE_DIR`` if set), so a rerun mostly hits the cache.
"""

from __future__ import annotations

import copy
import os
import tempfile

import numpy as np
import pytest
import torch

from ganzoo.architectures import get_architecture
from ganzoo.architectures.stylegan2.networks import Discriminator, Generator
from ganzoo.checkpoint import GAN
from ganzoo.cli import main
from ganzoo.compile import (
    compile_generator,
    compile_network,
    eager,
    is_compiled,
    unavailable_reason,
)
from ganzoo.train.dataset import TrainingImages
from ganzoo.train.loop import COMPILE_MIN_KIMG, Trainer, TrainingOptions

TOLERANCE = 1e-4  # the fixtures' float32 tolerance

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(
        unavailable_reason("cpu") is not None,
        reason=f"no inductor here: {unavailable_reason('cpu')}",
    ),
]


@pytest.fixture(scope="module", autouse=True)
def _inductor_cache():
    """One inductor cache for these tests that outlives the session (a rerun compiles little);
    not the per-test ganzoo cache. ``$TORCHINDUCTOR_CACHE_DIR`` wins when the user set it (not
    when inductor wrote its own default there on import, which ganzoo takes as unset)."""
    from ganzoo.compile import _inductor_default_cache_dir

    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current and os.path.abspath(current) != _inductor_default_cache_dir():
        yield
        return
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(
        tempfile.gettempdir(), f"ganzoo-test-inductor-{os.getuid()}"
    )
    yield
    del os.environ["TORCHINDUCTOR_CACHE_DIR"]


def _tiny_networks(seed: int = 0) -> tuple[Generator, Discriminator]:
    """A 32x32 StyleGAN2 with 16 channels at most and non-trivial weights."""
    torch.manual_seed(seed)
    kwargs = {"channel_base": 256, "channel_max": 16, "conv_clamp": 256}
    G = Generator(
        8, 0, 8, 32, 3, mapping_kwargs={"num_layers": 2}, synthesis_kwargs=kwargs
    )
    D = Discriminator(0, 32, 3, epilogue_kwargs={"mbstd_group_size": 2}, **kwargs)
    with torch.no_grad():
        for p in list(G.parameters()) + list(D.parameters()):
            p.add_(torch.randn_like(p) * 0.1)
        G.mapping.w_avg.normal_()
    return G, D


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max())


def test_compiled_generator_matches_eager_forward_and_gradients():
    G, _ = _tiny_networks()
    G_compiled = copy.deepcopy(G)
    assert compile_generator(G_compiled)
    assert (
        is_compiled(G_compiled.synthesis)
        and is_compiled(G_compiled.mapping)
        and not is_compiled(G)
    )
    z = torch.randn([4, 8])
    c = torch.zeros([4, 0])

    # Graphs shared with the other tests (batch 4, random noise): inductor's cache serves them.
    with torch.no_grad():  # inference: eval mode, seeded random noise
        G.eval(), G_compiled.eval()
        torch.manual_seed(5)
        eager_random = G(z, c, noise_mode="random")
        torch.manual_seed(5)
        compiled_random = G_compiled(z, c, noise_mode="random")
        assert (
            _max_diff(eager_random, compiled_random) < TOLERANCE
        )  # the same noise draws

    G.train(), G_compiled.train()  # training: forward and first-order gradients
    grads = []
    for net in (G, G_compiled):
        torch.manual_seed(6)
        img = net.synthesis(net.mapping(z, c), noise_mode="random")
        loss = torch.nn.functional.softplus(-img.mean(dim=[1, 2, 3])).sum()
        grads.append(torch.autograd.grad(loss, list(net.parameters())))
    for g_eager, g_compiled in zip(*grads):
        scale = max(float(g_eager.abs().max()), 1.0)
        assert _max_diff(g_eager, g_compiled) < TOLERANCE * scale

    with eager(G_compiled):  # the eager switch: the module's own code, bit for bit
        assert not is_compiled(G_compiled.synthesis)
        torch.manual_seed(7)
        eager_img = G(z, c)
        torch.manual_seed(7)
        assert torch.equal(eager_img, G_compiled(z, c))
    assert is_compiled(G_compiled.synthesis)
    # A copy is an eager module again (the compiled code belongs to the original).
    assert not is_compiled(copy.deepcopy(G_compiled).synthesis)


def test_generate_compile_gives_the_same_images(tmp_path):
    G, D = _tiny_networks(seed=1)
    source = tmp_path / "gan"
    GAN(
        G.eval(),
        None,
        D.eval(),
        config={"license": "cc-by-4.0", "source": {"made_by": "tests"}},
    ).save(source)
    outputs = {}
    for flag in ("", "--compile"):
        outdir = tmp_path / f"out{flag}"
        assert main(["generate", str(source), "--seeds", "0-3", "--batch-size", "4", "--outdir", str(outdir)]
                    + ([flag] if flag else [])) == 0  # fmt: skip
        outputs[flag] = outdir
    from PIL import Image

    names = sorted(p.name for p in outputs[""].iterdir())
    assert (
        names == sorted(p.name for p in outputs["--compile"].iterdir())
        and len(names) == 4
    )
    for name in names:
        plain = np.asarray(Image.open(outputs[""] / name), dtype=np.int16)
        compiled = np.asarray(Image.open(outputs["--compile"] / name), dtype=np.int16)
        assert (
            np.abs(plain - compiled).max() <= 1
        )  # float rounding may move a pixel by one level
    # The API underneath: the same uint8 images from sample(compile=True), and G_ema stays compiled.
    gan = GAN.load(source)
    compiled_images = gan.sample(seeds=[0, 1, 2, 3], batch_size=4, compile=True).astype(
        np.int16
    )
    assert is_compiled(gan.G_ema.synthesis)
    assert (
        np.abs(
            GAN.load(source).sample(seeds=[0, 1, 2, 3], batch_size=4).astype(np.int16)
            - compiled_images
        ).max()
        <= 1
    )


def _trainer(compile_option, total_kimg: float = 1.0) -> Trainer:
    G, D = _tiny_networks(seed=2)
    images = (
        torch.rand([16, 3, 32, 32], generator=torch.Generator().manual_seed(0)) * 255
    ).to(torch.uint8)
    options = TrainingOptions.for_architecture(
        get_architecture("stylegan2"), G.init_kwargs, 4, aug="none", total_kimg=total_kimg, compile=compile_option,
    )
    return Trainer(
        G,
        copy.deepcopy(G),
        D,
        TrainingImages(images, "compile-test", "compile-test"),
        options,
    )


def test_training_option_is_resolved_and_recorded(monkeypatch):
    import ganzoo.train.loop as loop

    monkeypatch.setattr(loop, "COMPILE_MIN_RESOLUTION", 64)  # below it: eager, however long the run
    assert _trainer(None, total_kimg=COMPILE_MIN_KIMG * 2).options.compile is False
    monkeypatch.undo()
    assert loop.COMPILE_MIN_RESOLUTION == 32  # the starter scale compiles (README: 1.24-1.39x)
    assert _trainer(None, total_kimg=1.0).options.compile is False  # short runs: eager
    assert _trainer(None, total_kimg=COMPILE_MIN_KIMG).options.compile is False
    long_run = _trainer(None, total_kimg=COMPILE_MIN_KIMG * 2)
    assert long_run.options.compile is True and long_run.compiled
    assert (
        long_run.options.to_dict()["compile"] is True
    )  # what snapshots and run.json record
    assert TrainingOptions.from_dict(long_run.options.to_dict()).compile is True
    assert _trainer(False, total_kimg=COMPILE_MIN_KIMG * 10).options.compile is False


def test_cpu_training_keeps_freed_memory(monkeypatch):
    calls = []
    monkeypatch.setattr("ganzoo.train.loop.keep_freed_memory", lambda: calls.append(True) or True)
    _trainer(False, total_kimg=0.1)
    assert calls == [True]  # once per run, on CPU (tests/test_malloc.py: what it does)


def test_compiled_activation_gradient_matches_eager():
    """ops.bias_act's compiled backward (from the output alone) against autograd's, with values
    on both sides of 0 and beyond the clamp."""
    from ganzoo import ops

    x0 = torch.randn([2, 6, 8, 8]).contiguous(memory_format=torch.channels_last) * 200
    b0 = torch.randn([6])
    for act, gain, clamp in (("lrelu", 2**0.5, 256.0), ("linear", 1.0, 100.0), ("lrelu", 1.0, None)):
        def layer(x, b, act=act, gain=gain, clamp=clamp):
            return ops.bias_act(x, b, act=act, gain=gain, clamp=clamp)

        results = []
        for fn in (layer, torch.compile(layer, dynamic=False)):
            x, b = x0.clone().requires_grad_(), b0.clone().requires_grad_()
            y = fn(x, b)
            y.backward(torch.linspace(-1, 1, y.numel()).reshape(y.shape))
            results.append((y, x.grad, b.grad))
        if clamp is not None:
            assert bool((results[0][0].abs() == clamp).any())  # the clamp acted somewhere
        for eager_t, compiled_t in zip(*results):
            assert _max_diff(eager_t, compiled_t) < 1e-5 * max(float(eager_t.detach().abs().max()), 1.0)


def test_compiled_training_is_close_to_eager_and_resumes_exactly():
    steps = 3  # minibatch 0 runs all four phases (R1 and path length eagerly)
    plain, compiled = _trainer(False), _trainer(True)
    assert compiled.compiled and is_compiled(compiled.D) and not plain.compiled
    for _ in range(steps):
        plain_stats, compiled_stats = plain.step(), compiled.step()
        for key in ("loss_G", "loss_D"):
            assert compiled_stats[key] == pytest.approx(plain_stats[key], abs=1e-4)
    for net in ("G", "G_ema", "D"):
        for (name, a), b in zip(
            getattr(plain, net).state_dict().items(),
            getattr(compiled, net).state_dict().values(),
        ):
            assert _max_diff(a, b) < TOLERANCE, f"{net}.{name}"

    # Resume: a new compiled trainer from the compiled run's weights and state continues as
    # the uninterrupted compiled run does.
    tensors, meta = compiled.state_tensors()
    resumed = _trainer(meta["options"]["compile"])
    for net in ("G", "G_ema", "D"):
        getattr(resumed, net).load_state_dict(getattr(compiled, net).state_dict())
    resumed.load_state(tensors, meta)
    assert resumed.compiled
    compiled.step(), resumed.step()
    for net in ("G", "D"):
        for (name, a), b in zip(
            getattr(compiled, net).state_dict().items(),
            getattr(resumed, net).state_dict().values(),
        ):
            assert _max_diff(a, b) < 1e-6, f"{net}.{name}"


def test_unavailable_compiler_falls_back_with_one_warning(monkeypatch, capsys):
    import ganzoo.compile as gc

    monkeypatch.setattr(gc.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(gc, "_warned", set())
    G, _ = _tiny_networks()
    assert compile_network(G.synthesis) is False and compile_generator(G) is False
    assert not is_compiled(G.synthesis)
    warnings = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("warning:")
    ]
    assert len(warnings) == 1 and "C++ compiler" in warnings[0]


# ----------------------------------------------------------------------------------------------
# Winograd F(4x4, 3x3): the compiled CPU path of wide 3x3 convolutions (ops.winograd_conv3x3)


def test_winograd_convolution_is_a_padded_3x3_convolution():
    """Exact algebra (float64) on odd channel counts, non-square and channels-last inputs, with
    the gradients autograd derives through the transforms; bad shapes are refused."""
    from ganzoo import ops

    torch.manual_seed(0)
    for shape, out_channels, channels_last in (([2, 3, 8, 12], 5, False), ([1, 7, 4, 4], 2, True)):
        x = torch.randn(shape, dtype=torch.float64)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        w = torch.randn([out_channels, shape[1], 3, 3], dtype=torch.float64)
        upstream = torch.randn([shape[0], out_channels, *shape[2:]], dtype=torch.float64)
        results = []
        for conv in (ops.winograd_conv3x3, lambda a, b: torch.nn.functional.conv2d(a, b, padding=1)):
            xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
            y = conv(xg, wg)
            y.backward(upstream)
            results.append((y, xg.grad, wg.grad))
        for winograd_t, direct_t in zip(*results):
            assert winograd_t.shape == direct_t.shape
            assert _max_diff(winograd_t, direct_t) < 1e-10
    with pytest.raises(ValueError, match="divisible by 4"):
        ops.winograd_conv3x3(torch.zeros([1, 2, 6, 8]), torch.zeros([2, 2, 3, 3]))
    with pytest.raises(ValueError, match="3x3"):
        ops.winograd_conv3x3(torch.zeros([1, 2, 8, 8]), torch.zeros([2, 2, 5, 5]))


def test_winograd_float32_error_stays_near_a_direct_convolution():
    """Rounding of the transforms, in float32 at the width it is used for (unit-variance data,
    a kernel of unit output gain): measured 1.5e-5; oneDNN's direct convolution 1.3e-6 eager, about
    1e-5 compiled (bench_winograd.py)."""
    from ganzoo import ops

    torch.manual_seed(1)
    x = torch.randn([1, 256, 32, 32])
    w = torch.randn([256, 256, 3, 3]) / (3 * 256**0.5)
    exact = torch.nn.functional.conv2d(x.double(), w.double(), padding=1)
    assert _max_diff(ops.winograd_conv3x3(x, w), exact) < 4e-5


def _graph_ops(fn, *args) -> set[str]:
    """Names of the functions in the graph dynamo traces for ``fn(*args)`` (no inductor)."""
    names: set[str] = set()

    def recorder(gm, example_inputs):
        names.update(getattr(n.target, "__name__", str(n.target)) for n in gm.graph.nodes)
        return gm.forward

    torch._dynamo.reset()
    torch.compile(fn, backend=recorder, dynamic=False)(*args)
    torch._dynamo.reset()
    return names


def test_compiled_cpu_path_picks_winograd_for_wide_3x3_convolutions():
    from ganzoo import ops

    def layer(x, w, padding=1):
        return ops.conv2d_resample(x, w, padding=padding)

    wide, narrow = torch.zeros([256, 256, 3, 3]), torch.zeros([128, 128, 3, 3])
    graph = _graph_ops(layer, torch.zeros([1, 256, 32, 32]), wide)
    assert "bmm" in graph and "conv2d" not in graph
    for x, w in (
        (torch.zeros([1, 128, 32, 32]), narrow),  # too few channels
        (torch.zeros([1, 256, 16, 16]), wide),  # too small an image
        (torch.zeros([1, 256, 32, 32], dtype=torch.float64), wide.double()),  # float32 only
    ):
        graph = _graph_ops(layer, x, w)
        assert "conv2d" in graph and "bmm" not in graph
    assert "conv2d" in _graph_ops(lambda x, w: layer(x, w, padding=0), torch.zeros([1, 256, 32, 32]), wide)
    # Eager mode never takes it: the direct convolution, bit for bit.
    x = torch.randn([1, 256, 32, 32])
    w = torch.randn([256, 256, 3, 3]) / 48
    assert torch.equal(layer(x, w), torch.nn.functional.conv2d(x, w, padding=1))


def test_compiled_generator_with_a_wide_layer_matches_eager(monkeypatch):
    """A 32x32 generator whose last block convolves 256 channels (Winograd under inductor):
    images in eval mode and first-order gradients in train mode within the fixture tolerance."""
    from ganzoo import ops

    torch.manual_seed(2)
    G = Generator(8, 0, 8, 32, 3, mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 8192, "channel_max": 256, "conv_clamp": 256})  # fmt: skip
    with monkeypatch.context() as patch:  # b32.conv1 is a layer the compiled path hands to Winograd
        patch.setattr(torch.compiler, "is_compiling", lambda: True)
        assert ops._winograd_pays(torch.zeros([2, 256, 32, 32]), G.synthesis.b32.conv1.weight, 1, 1)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    G_compiled = copy.deepcopy(G)
    compile_generator(G_compiled)
    z, c = torch.randn([2, 8]), torch.zeros([2, 0])
    with torch.no_grad():
        G.eval(), G_compiled.eval()
        eager_img, compiled_img = (net(z, c, noise_mode="const") for net in (G, G_compiled))
    assert _max_diff(eager_img, compiled_img) < TOLERANCE
    G.train(), G_compiled.train()
    grads = []
    for net in (G, G_compiled):
        img = net(z, c, noise_mode="const")
        weights = [net.synthesis.b32.conv1.weight, net.synthesis.b32.conv0.weight]
        grads.append(torch.autograd.grad(img.square().mean(), weights))
    for g_eager, g_compiled in zip(*grads):
        assert _max_diff(g_eager, g_compiled) < TOLERANCE * max(float(g_eager.abs().max()), 1.0)
