"""An optional compiled path for ganzoo's networks: ``torch.compile`` with the inductor backend.

The plain PyTorch code of :mod:`ganzoo.ops` and the architectures stays the reference
implementation and the default. :func:`compile_network` compiles one module's forward *in
place* (its parameters, buffers, ``state_dict`` and class stay what they were; only calls go
through generated code), with ``dynamic=False``: one specialized graph per input shape, grad
mode and train/eval mode, each compiled on its first call.

Numerics: inductor fuses pointwise epilogues (bias, activation, gain, clamp, noise, modulation
and demodulation scales) into the surrounding kernels and may reorder float sums, so a compiled
forward agrees with the eager one to about 1e-5 in float32 (the tests hold it to 1e-4), not
bit for bit. On CPU, wide stride-1 3×3 convolutions (at least 256 channels in and out, images
of at least 32²) are computed by Winograd's F(4×4, 3×3) (:func:`ganzoo.ops.winograd_conv3x3`,
a quarter of the multiplications; about 2e-5 from the exact result per layer, against 1e-5 for
oneDNN's direct convolution). Random numbers drawn inside a compiled forward
(``noise_mode='random'``) come from PyTorch's own generator as in eager mode
(``fallback_random``), so seeds mean the same.

Compile time is paid once per process and shape; inductor's on-disk cache (FX graph and
AOT-autograd caches) makes later processes much faster. The cache lives in
``$TORCHINDUCTOR_CACHE_DIR`` if set, else in ganzoo's cache folder (``<cache>/inductor``, see
:func:`ganzoo._io.cache_home`) rather than inductor's default under ``/tmp``; only inductor's
precompiled C++ headers stay in its default folder, whose path inductor fixes.

Fallback: where compiling is not possible (no C++ compiler for inductor's CPU code, no Triton
for CUDA, a torch without ``torch.compile``, or a compilation that fails on the first call) the
module runs eagerly and one warning line says why; results are the same up to the tolerance
above either way.

What is not compiled: passes that differentiate twice (``create_graph=True``: StyleGAN2's R1
and path-length regularizers) are not supported by AOT autograd; callers run them eagerly with
:func:`eager` (the training loop does so for its ``Greg`` and ``Dreg`` phases).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import torch

_ATTRIBUTE = "_compiled_call_impl"  # where nn.Module.__call__ looks for a compiled call
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr)


def _inductor_default_cache_dir() -> str:
    """Inductor's own default (``<tmp>/torchinductor_<user>``)."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:  # pragma: no cover - a torch that keeps it elsewhere
        return ""
    return os.path.abspath(default_cache_dir())


def use_ganzoo_cache_dir() -> str:
    """Points inductor's on-disk cache at ``<ganzoo cache>/inductor`` unless the user set
    ``TORCHINDUCTOR_CACHE_DIR``; returns the directory in use.

    Inductor writes its default into that variable the first time any of its modules asks for
    the cache (importing ``torch._inductor.compiler_bisector`` does), so a value equal to its
    default is taken as unset."""
    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if not current or os.path.abspath(current) == _inductor_default_cache_dir():
        from ganzoo._io import cache_home

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_home() / "inductor")
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


class _DropCudaProbe(logging.Filter):
    """Drops torch's ``No CUDA runtime is found`` log line: inductor's CPU code imports
    ``torch.utils.cpp_extension``, which logs it at import on a machine without CUDA; it says
    nothing about a CPU compilation and is not a ganzoo one-line warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No CUDA runtime is found")


_CUDA_PROBE_FILTER = _DropCudaProbe()


def unavailable_reason(device: torch.device | str = "cpu") -> str | None:
    """Why inductor cannot compile for ``device`` here, or None when it can."""
    if not hasattr(torch, "compile") or not hasattr(torch.nn.Module, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    if sys.platform == "win32":
        return "torch.compile's inductor backend is not supported on Windows here"
    device = torch.device(device)
    if device.type == "cpu":
        names = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
        if not any(name and shutil.which(name) for name in names):
            return "no C++ compiler found (inductor's CPU code needs g++ or clang++; set CXX)"
    elif device.type == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:  # pragma: no cover - very old torch
            return "Triton is not available"
        if not has_triton():
            return "Triton is not installed (inductor's CUDA code needs it)"
    else:
        return f"inductor does not compile for {device.type} here"
    return None


class _CompiledCall:
    """The compiled ``__call__`` of one module, with an eager switch and a one-time fallback.

    Stored as the module's ``_compiled_call_impl`` (what ``nn.Module.compile`` sets); a copy or
    pickle of the module gets an eager module (the compiled code belongs to this object)."""

    def __init__(self, module: torch.nn.Module, **compile_kwargs: Any):
        self.eager_call = module._call_impl
        self.compiled = torch.compile(self.eager_call, **compile_kwargs)
        self.name = type(module).__name__
        self.enabled = True
        self.failed = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.enabled or self.failed:
            return self.eager_call(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as exc:  # compilation errors come in many types
            if not type(exc).__module__.startswith(
                ("torch._dynamo", "torch._inductor", "torch._functorch")
            ):
                raise  # the network's own error (a wrong shape, ...): the same in eager mode
            self.failed = True
            first_line = (str(exc).strip().splitlines() or [""])[0][:200]
            _warn_once(
                f"torch.compile of {self.name} failed ({type(exc).__name__}: {first_line}); running it eagerly"
            )
            return self.eager_call(*args, **kwargs)

    def __deepcopy__(self, memo: dict) -> None:
        return None

    def __reduce__(self) -> tuple:
        return (type(None), ())


def compile_network(module: torch.nn.Module) -> bool:
    """Compiles ``module``'s forward in place with inductor (``dynamic=False``).

    Args:
        module: any ``nn.Module`` (ganzoo compiles ``G.mapping``, ``G.synthesis`` and ``D``).

    Returns:
        True if compiled (the compilation itself happens on the first call), False if it is
        unavailable here (one warning line says why; the module stays eager).
    """
    reason = unavailable_reason(_device_of(module))
    if reason is not None:
        _warn_once(f"torch.compile unavailable: {reason}; running eagerly")
        return False
    if isinstance(getattr(module, _ATTRIBUTE, None), _CompiledCall):
        return True
    use_ganzoo_cache_dir()
    logging.getLogger("torch.utils.cpp_extension").addFilter(_CUDA_PROBE_FILTER)  # once: a set of filters
    options = {
        "fallback_random": True
    }  # randn inside a graph draws what eager mode draws
    setattr(
        module,
        _ATTRIBUTE,
        _CompiledCall(module, backend="inductor", dynamic=False, options=options),
    )
    return True


def compile_generator(G: torch.nn.Module) -> bool:
    """Compiles a generator's ``mapping`` and ``synthesis`` networks (which sampling and the
    objectives call separately), or ``G`` itself when it has neither; see :func:`compile_network`."""
    parts = [getattr(G, name, None) for name in ("mapping", "synthesis")]
    targets = [m for m in parts if isinstance(m, torch.nn.Module)] or [G]
    results = [compile_network(m) for m in targets]  # every part, even after a refusal
    return all(results)


def is_compiled(module: torch.nn.Module) -> bool:
    """Whether calls of ``module`` run :func:`compile_network`'s code now (compiled, not
    fallen back, not inside :func:`eager`)."""
    call = getattr(module, _ATTRIBUTE, None)
    return isinstance(call, _CompiledCall) and call.enabled and not call.failed


@contextlib.contextmanager
def eager(*modules: torch.nn.Module) -> Iterator[None]:
    """Runs the compiled ``modules`` (and their compiled submodules) eagerly inside the block."""
    calls = []
    for module in modules:
        for sub in module.modules():
            call = getattr(sub, _ATTRIBUTE, None)
            if isinstance(call, _CompiledCall) and call.enabled:
                calls.append(call)
    for call in calls:
        call.enabled = False
    try:
        yield
    finally:
        for call in calls:
            call.enabled = True


def _device_of(module: torch.nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


__all__ = [
    "compile_generator",
    "compile_network",
    "eager",
    "is_compiled",
    "unavailable_reason",
    "use_ganzoo_cache_dir",
]
