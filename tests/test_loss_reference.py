"""ganzoo's StyleGAN2 training objective, pinned to reference gradients (fixture
``stylegan2-ada/loss32``, see ``../shared/fixtures/README.md``).

For each phase (``Gmain``, ``Greg``, ``Dmain``, ``Dreg``) run alone from the saved 32×32, 3-class
networks, :meth:`StyleGAN2Loss.accumulate` must give the reference's gradient for every
parameter, and the running statistics applied afterwards as the training loop applies them
(:meth:`StyleGAN2Loss.update_running`) must give the reference's
``w_avg`` and ``pl_mean``. A second test shows the comparison has teeth: a flipped sign or a
dropped penalty fails it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from ganzoo.readers.base import ForeignCheckpoint
from ganzoo.readers.state_dict import read_state_dict_file
from ganzoo.architectures.stylegan2.networks import build_network
from ganzoo.train.loop import fill_unreached_grads
from ganzoo.architectures.stylegan2.objective import StyleGAN2Loss
from ganzoo.train.loss import PHASES, ChunkStats

pytestmark = pytest.mark.usefixtures("one_thread")

# Tolerance on gradients, per tensor: max|g - g_ref| <= TOL * max|g_ref|. Relative to the
# tensor's largest magnitude, not elementwise and not one absolute number: gradient magnitudes
# differ by orders between layers (the R1 gradients here are ~1e-6..1e-4, the G main-loss ones
# ~1e-1), and float32 summation order differs between implementations, so single small
# elements carry errors relative to the tensor's scale, not to their own value.
TOL = 1e-4
# Denominator floor for tensors whose reference gradient is all zero (parameters a phase does
# not reach): there the check is max|g| <= TOL * FLOOR.
FLOOR = 1e-8
# w_avg and pl_mean are a few float32 operations on the same numbers: much tighter.
STATS_TOL = 1e-6


@dataclass
class Loss32:
    checkpoint: ForeignCheckpoint
    ref: dict[str, torch.Tensor]
    settings: dict


@pytest.fixture(scope="module")
def loss32(shared_fixtures: Path) -> Loss32:
    folder = shared_fixtures / "stylegan2-ada" / "loss32"
    cfg = json.loads((folder / "loss32-config.json").read_text())
    checkpoint = read_state_dict_file(
        folder / "loss32-networks.pt",
        config={"generator": cfg["generator_kwargs"], "discriminator": cfg["discriminator_kwargs"]},
    )
    with np.load(folder / "loss32-reference.npz") as npz:
        ref = {key: torch.from_numpy(npz[key].copy()) for key in npz.files}
    settings = cfg["settings"]
    # What the test below relies on; a changed fixture must be looked at, not silently used.
    assert settings["augment_pipe"] is None and settings["style_mixing_prob"] == 0
    assert "const" in settings["synthesis noise"]
    return Loss32(checkpoint, ref, settings)


def _build(spec) -> torch.nn.Module:
    # build_network + load_state_dict copies the tensors: every test gets fresh networks, and the
    # in-place w_avg update cannot leak into the module-scoped checkpoint.
    net = build_network(spec.class_name, spec.init_kwargs)
    net.load_state_dict(spec.state_dict, strict=True)
    return net.to(torch.float32).train()


@dataclass
class PhaseRun:
    G: torch.nn.Module
    D: torch.nn.Module
    loss: StyleGAN2Loss
    stats: ChunkStats
    w_avg_before: torch.Tensor
    pl_mean_before: torch.Tensor

    def net(self, phase: str) -> torch.nn.Module:
        return self.G if phase.startswith("G") else self.D


def run_phase(data: Loss32, phase: str, loss_cls: type[StyleGAN2Loss] = StyleGAN2Loss, augment_pipe=None,
              real_img: torch.Tensor | None = None, **overrides) -> PhaseRun:  # fmt: skip
    """Runs one phase from the saved state as the fixture did, then applies its statistics the
    way ``Trainer._apply_phase_stats`` does for one chunk in one process."""
    G, D = _build(data.checkpoint.G_ema), _build(data.checkpoint.D)  # the file's 'G' is in G_ema
    G.requires_grad_(phase.startswith("G"))
    D.requires_grad_(phase.startswith("D"))
    ref, s = data.ref, data.settings
    pl_noise_raw = ref["pl_noise_raw"]

    def replay_pl_noise(img: torch.Tensor) -> torch.Tensor:
        # The reference's randn_like(img) returned pl_noise_raw; the loss divides by sqrt(H*W).
        assert img.shape == pl_noise_raw.shape, (img.shape, pl_noise_raw.shape)
        return pl_noise_raw.clone()

    kwargs = dict(
        r1_gamma=s["r1_gamma"], style_mixing_prob=s["style_mixing_prob"], pl_weight=s["pl_weight"],
        pl_batch_shrink=s["pl_batch_shrink"], pl_decay=s["pl_decay"], noise_mode="const",
        pl_noise=replay_pl_noise,
    )  # fmt: skip
    kwargs.update(overrides)
    loss = loss_cls(G, D, augment_pipe, **kwargs)
    loss.pl_mean.fill_(s["pl_mean_before"])
    w_avg_before = G.mapping.w_avg.clone()
    pl_mean_before = loss.pl_mean.clone()
    stats = loss.accumulate(
        phase, ref["real_img"] if real_img is None else real_img, ref["real_c"], ref["gen_z"], ref["gen_c"], gain=s["gain"],
        gen=torch.Generator().manual_seed(0),
    )  # fmt: skip
    if stats.sums:  # one chunk in one process: its sums are the phase's totals
        loss.update_running(phase, {k: v.reshape(-1).to(torch.float32) for k, v in stats.sums.items()}, dict(stats.counts))
    return PhaseRun(G, D, loss, stats, w_avg_before, pl_mean_before)


def reference_grads(data: Loss32, phase: str) -> dict[str, torch.Tensor]:
    prefix = f"{phase}/grad/"
    return {key[len(prefix) :]: value for key, value in data.ref.items() if key.startswith(prefix)}


def worst_gradient_error(net: torch.nn.Module, ref_grads: dict[str, torch.Tensor]) -> tuple[float, str]:
    """The worst per-tensor ``max|g - g_ref| / max(max|g_ref|, FLOOR)`` over the reference's
    parameters, and its parameter. A parameter the phase does not reach (``grad is None``) has
    gradient zero, as the loop's ``fill_unreached_grads`` makes it."""
    params = dict(net.named_parameters())
    worst, worst_name = 0.0, ""
    for name, g_ref in ref_grads.items():
        param = params[name]
        assert param.shape == g_ref.shape, name
        g = param.grad.detach() if param.grad is not None else torch.zeros_like(g_ref)
        err = float((g - g_ref).abs().max()) / max(float(g_ref.abs().max()), FLOOR)
        if err > worst:
            worst, worst_name = err, name
    return worst, worst_name


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max()) / max(float(b.abs().max()), FLOOR)


@pytest.mark.parametrize("phase", PHASES)
def test_phase_matches_reference(loss32: Loss32, phase: str):
    run = run_phase(loss32, phase)
    ref_grads = reference_grads(loss32, phase)
    net, other = run.net(phase), (run.D if phase.startswith("G") else run.G)

    # The reference gives every parameter of the phase's network a gradient (zeros where the
    # loss does not depend on it: the ToRGB biases in Greg, D's output bias in Dreg), and none
    # of the other network's; ganzoo's loop does the same with fill_unreached_grads before the
    # step, so Adam's state advances for every parameter as in the reference.
    assert set(ref_grads) == {name for name, _ in net.named_parameters()}
    assert all(p.grad is None for p in other.parameters())
    fill_unreached_grads(net.parameters())
    ours_nonzero = {n for n, p in net.named_parameters() if bool(p.grad.ne(0).any())}
    assert ours_nonzero == {n for n, g in ref_grads.items() if bool(g.ne(0).any())}

    worst, name = worst_gradient_error(net, ref_grads)
    assert worst <= TOL, f"{phase}: worst relative gradient error {worst:.3g} at {name}"

    # w_avg: the reference's mapping updates it on every training-mode call (Gmain, Greg, Dmain);
    # Dreg never runs G, so its w_avg is the saved one.
    w_ref = loss32.ref[f"{phase}/w_avg_after"]
    assert _rel(run.G.mapping.w_avg, w_ref) <= STATS_TOL
    moved = _rel(w_ref, run.w_avg_before) > 1e-4
    assert moved == (phase != "Dreg")
    if phase == "Greg":
        pl_ref = loss32.ref["Greg/pl_mean_after"]
        assert abs(float(run.loss.pl_mean) - float(pl_ref)) <= STATS_TOL * abs(float(pl_ref))
        assert abs(float(pl_ref) - float(run.pl_mean_before)) > 1e-4  # it did move
    else:
        assert torch.equal(run.loss.pl_mean, run.pl_mean_before)


class _FlippedLogits(StyleGAN2Loss):
    """The classic sign bug: softplus of the logit with the wrong sign (G and D main losses)."""

    def run_D(self, img, c, gen):
        return -super().run_D(img, c, gen)


@pytest.mark.parametrize(
    ("phase", "loss_cls", "overrides"),
    [
        pytest.param("Gmain", _FlippedLogits, {}, id="Gmain-flipped-sign"),
        pytest.param("Dmain", _FlippedLogits, {}, id="Dmain-flipped-sign"),
        pytest.param("Greg", StyleGAN2Loss, {"pl_weight": 0.0}, id="Greg-dropped-penalty"),
        pytest.param("Dreg", StyleGAN2Loss, {"r1_gamma": 0.0}, id="Dreg-dropped-penalty"),
        # Subtler: the penalty measured against the mean before this batch, not after.
        pytest.param("Greg", StyleGAN2Loss, {"pl_decay": 0.0}, id="Greg-stale-pl-mean"),
    ],
)
def test_comparison_has_teeth(loss32: Loss32, phase: str, loss_cls, overrides):
    run = run_phase(loss32, phase, loss_cls, **overrides)
    worst, _ = worst_gradient_error(run.net(phase), reference_grads(loss32, phase))
    assert worst > 100 * TOL


class _RecordingAugment(torch.nn.Module):
    """An augmentation that records every batch D is shown and returns it times ``scale``."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.seen: list[torch.Tensor] = []

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self.seen.append(images)
        return images * self.scale


@pytest.mark.parametrize("phase", PHASES)
def test_augmentation_is_applied_where_the_reference_applies_it(loss32: Loss32, phase: str):
    """ADA augments every image D sees: the fakes in Gmain (G learns through the augmentation),
    fakes then reals in Dmain, the reals of the R1 pass, whose gradient is taken with respect to
    the reals before augmentation; Greg does not run D. An identity augmentation leaves every
    phase's gradients those of the fixture."""
    spy = _RecordingAugment()
    run = run_phase(loss32, phase, augment_pipe=spy)
    worst, name = worst_gradient_error(run.net(phase), reference_grads(loss32, phase))
    assert worst <= TOL, (phase, worst, name)
    real = loss32.ref["real_img"]
    kinds = ["real" if x.shape == real.shape and torch.equal(x.detach(), real) else "fake" for x in spy.seen]
    assert kinds == {"Gmain": ["fake"], "Greg": [], "Dmain": ["fake", "real"], "Dreg": ["real"]}[phase]
    if phase == "Gmain":
        assert spy.seen[0].requires_grad and not spy.seen[0].is_leaf
    if phase == "Dreg":
        assert spy.seen[0].is_leaf and spy.seen[0].requires_grad  # R1's input: the un-augmented reals
        # Through an augmentation x -> 2x the R1 gradient w.r.t. x is twice D's input gradient at
        # 2x: the penalty is 4 times that of showing D the reals 2x with no augmentation.
        doubled = run_phase(loss32, phase, augment_pipe=_RecordingAugment(2.0))
        plain = run_phase(loss32, phase, real_img=real * 2)
        assert doubled.stats.loss_sum == pytest.approx(4 * plain.stats.loss_sum, rel=1e-4)
        assert torch.equal(doubled.stats.real_logits, plain.stats.real_logits)  # r_t sees the R1 pass
