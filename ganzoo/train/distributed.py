"""Multi-process data-parallel training: process-group set-up for ``torchrun``.

``torchrun --nproc_per_node N -m ganzoo finetune ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in the environment. Each process
joins one process group (NCCL on CUDA, gloo on CPU) and trains its share of every minibatch's
chunks; gradients and every statistic (ADA's r_t, the path-length and w averages) are summed
over processes, and rank 0 alone writes the run directory.
"""

from __future__ import annotations

import atexit
import os

import torch


def maybe_init_distributed(device: str = "cpu") -> str:
    """Joins the process group when launched by ``torchrun`` with more than one process.

    Args:
        device: the requested device; with CUDA each process takes ``cuda:LOCAL_RANK``.

    Returns:
        The device this process trains on.

    Raises:
        GanzooError: ``device`` is not there (checked first, before CUDA is touched).
    """
    from ganzoo.train.checks import check_device

    device = check_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return device
    import torch.distributed as dist

    use_cuda = str(device).startswith("cuda")
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        atexit.register(_leave_process_group)
    return device


def _leave_process_group() -> None:
    """Destroys the process group while the interpreter is still whole: left to the C++ static
    destructors at exit, gloo's threads can be torn down while running, and the process aborts
    ("terminate called without an active exception") after the run has finished."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_rank_zero() -> bool:
    """True in the process that reports (rank 0 under ``torchrun``, or a single process)."""
    return int(os.environ.get("RANK", "0")) == 0
