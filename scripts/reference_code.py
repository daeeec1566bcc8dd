"""Helpers the benchmark scripts share for running a reference implementation beside ganzoo.

A reference is a local checkout of an upstream repository (stylegan2-ada-pytorch, stylegan3,
...), given by path at run time; nothing of it is part of ganzoo. :func:`import_modules`
imports its modules (:func:`import_checkout`: one, exiting with one line on failure); :class:`ReferenceLoop` drives a StyleGAN reference's loss minibatch
by minibatch as its training loop does.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any, Callable

import torch


def import_modules(path: str, *modules: str) -> types.SimpleNamespace:
    """``modules`` (e.g. ``"training.networks"``) of the checkout at ``path``, by their last
    name; raises what importing them raises.

    stylegan2-ada-pytorch and stylegan3 both name their packages ``training``/``torch_utils``:
    another checkout's are dropped from ``sys.modules`` and this path goes first. stylegan3's
    ops import ``pkg_resources.parse_version``, gone from recent setuptools: a stand-in built on
    ``packaging`` is registered when it is missing."""
    for name in list(sys.modules):
        if name.split(".")[0] in ("training", "torch_utils", "dnnlib"):
            del sys.modules[name]
    root = str(Path(path).resolve())
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        from packaging.version import parse

        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)  # type: ignore[assignment]
    return types.SimpleNamespace(**{m.rsplit(".", 1)[-1]: importlib.import_module(m) for m in modules})


def import_checkout(path: str, module: str, what: str = "a stylegan2-ada-pytorch checkout") -> Any:
    """``module`` (e.g. ``"training.networks"``) of the checkout at ``path``; exits with one line
    when the file is not there or importing it fails."""
    if not (Path(path).resolve() / (module.replace(".", "/") + ".py")).is_file():
        sys.exit(f"error: --reference {path}: no {module.replace('.', '/')}.py there (expected {what})")
    try:
        return getattr(import_modules(path, module), module.rsplit(".", 1)[-1])
    except Exception as exc:  # noqa: BLE001 - report anything the foreign code raises
        sys.exit(f"error: --reference {path}: importing {module} failed: {type(exc).__name__}: {exc}")


class ReferenceLoop:
    """A StyleGAN reference's training minibatch, phase by phase, as its training loop runs it:
    requires_grad toggling, ``gain = interval``, nan_to_num, Adam with the lazy-regularization
    correction, then the G EMA (with StyleGAN2-ADA's ramp-up when ``ema_rampup`` is set).

    Args:
        G, D: the reference networks (in train mode, no grad).
        accumulate: ``accumulate(phase, real, c, z, gen_c, gain, cur_nimg)``, the reference loss's
            call (stylegan2-ada-pytorch's and stylegan3's signatures differ).
        real: one batch of reals on ``device``.
        reg: ``(("G", interval), ("D", interval))``; interval 0 = no regularization phase.
        lr: G's and D's learning rates.
    """

    def __init__(self, G: Any, D: Any, accumulate: Callable[..., Any], real: torch.Tensor, batch: int,
                 device: torch.device, reg: tuple = (("G", 4), ("D", 16)), lr: tuple = (0.0025, 0.0025),
                 ema_kimg: float = 10.0, ema_rampup: float | None = None):  # fmt: skip
        self.G, self.D, self.accumulate = G, D, accumulate
        self.G_ema = copy.deepcopy(G).eval()
        self.phases = []
        for (name, interval), rate in zip(reg, lr):
            net = G if name == "G" else D
            ratio = interval / (interval + 1) if interval else 1.0
            opt = torch.optim.Adam(net.parameters(), lr=rate * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)
            self.phases += [(name + "main", net, opt, 1)] + ([(name + "reg", net, opt, interval)] if interval else [])
        self.real, self.batch, self.device = real, batch, device
        self.batch_idx, self.cur_nimg = 0, 0
        self.ema_kimg, self.ema_rampup = ema_kimg, ema_rampup

    def step(self) -> None:
        c = torch.zeros([self.batch, 0], device=self.device)
        for name, net, opt, interval in self.phases:
            if self.batch_idx % interval:
                continue
            z = torch.randn([self.batch, self.G.z_dim], device=self.device)
            net.requires_grad_(True)
            opt.zero_grad(set_to_none=True)
            self.accumulate(name, self.real, c, z, c, interval, self.cur_nimg)
            net.requires_grad_(False)
            for p in net.parameters():
                if p.grad is not None:
                    torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            opt.step()
        ema_nimg = self.ema_kimg * 1000
        if self.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.cur_nimg * self.ema_rampup)
        beta = 0.5 ** (self.batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)
        self.cur_nimg += self.batch
        self.batch_idx += 1
