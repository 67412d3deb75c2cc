"""Several processes, one run: the ranks ``torchrun`` starts and the few collectives they need.

``torchrun --nproc-per-node 2 -m pinnsolve solve problem.toml`` starts two processes with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and a rendezvous in their environment;
:func:`communicator` joins them into one process group (NCCL between GPUs, gloo on CPU), once
per process. Without those variables it returns :data:`SINGLE`, whose collectives are the
identity, so the rest of pinnsolve is written once, for any number of ranks.

What the ranks share, and how (the rest of the design follows from it):

* Every rank draws the same collocation points, network and multipliers from the seed, so no
  initial state is sent. Phases that every rank computes alike stay alike; a broadcast from rank
  0 after each phase (:meth:`Communicator.broadcast_state`) removes what rounding could make
  differ.
* Sharded evaluation (:mod:`pinnsolve.parallel.sharding`) sends per-point values
  (:meth:`Communicator.gather_rows`) and averages gradients (:meth:`average_gradients`).
* Explorer attempts are split over ranks; their results travel as Python objects
  (:meth:`all_gather_objects`).
* Only rank 0 writes; a resumed run reads rank 0's checkpoint (:meth:`broadcast_object`).

A rank that fails exits; ``torchrun`` then stops the others, so nobody waits for it. The process
group's timeout bounds a collective only as a last resort (``[distributed] timeout_s``). At
interpreter exit the group is destroyed before finalization (:func:`_close`), so a script that
simply ends, the CLI included, ends cleanly on every rank.
"""

from __future__ import annotations

import atexit
import datetime
import os
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import PinnsolveError

#: the variables torchrun sets for every process it starts
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class Communicator:
    """This process's rank among ``world`` ranks, and the collectives pinnsolve uses.

    With ``world == 1`` every method is the identity and torch.distributed is never touched.
    """

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0):
        self.rank = rank
        self.world = world
        self.local_rank = local_rank

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes the run folder and prints."""
        return self.rank == 0

    def shard(self, n: int, rank: int | None = None) -> slice:
        """The contiguous rows of ``n`` that ``rank`` (default: this one) owns; the first
        ``n mod world`` ranks own one row more."""
        rank = self.rank if rank is None else rank
        base, extra = divmod(n, self.world)
        start = rank * base + min(rank, extra)
        return slice(start, start + base + (rank < extra))

    def gather_rows(self, pieces: list[Tensor], sizes: list[int]) -> list[Tensor]:
        """Whole tensors from shards, on every rank, in one collective: ``pieces[i]`` holds this
        rank's :meth:`shard` ``(sizes[i])`` of the rows of tensor ``i``. Differentiable: the
        gradient of a row flows back to the rank that owns it, summed over the ranks (each
        rank's loss reads every row), so gradients are averaged afterwards (module docstring)."""
        if self.world == 1:
            return list(pieces)
        return list(_GatherRows.apply(self, tuple(sizes), *pieces))

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """``p.grad`` ← mean over ranks, in one collective (what DDP does)."""
        grads = [p.grad for p in params if p.grad is not None]
        if self.world == 1 or not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        for g, part in zip(grads, torch.split(flat, [g.numel() for g in grads]), strict=True):
            g.copy_(part.view_as(g))

    def all_sum(self, t: Tensor) -> Tensor:
        """``t`` summed over the ranks (a new tensor; every rank gets the same)."""
        if self.world == 1:
            return t
        total = t.detach().clone()
        dist.all_reduce(total)
        return total

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any rank (stop requests, time limits: all ranks must take
        the same branch or the next collective waits forever)."""
        if self.world == 1:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0], device=self._device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def all_gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable; tensors on the CPU), in rank order."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (what the others pass is ignored)."""
        if self.world == 1:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_state(self, tensors: Iterable[Tensor]) -> None:
        """Overwrite ``tensors`` in place with rank 0's (the model and multipliers after a phase
        every rank computed alike: identical up to rounding, now bit for bit)."""
        tensors = list(tensors)
        if self.world == 1 or not tensors:
            return
        for t in tensors:
            dist.broadcast(t.data, src=0)

    def _device(self) -> torch.device:
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


class _GatherRows(torch.autograd.Function):
    """Forward: this rank's pieces packed into one row, all-gathered, unpacked into whole
    tensors. Backward: the gradient packed the same way for every rank, summed over ranks (one
    all-reduce), and this rank's row of it unpacked into its pieces."""

    @staticmethod
    def forward(ctx, comm: Communicator, sizes: tuple[int, ...], *pieces: Tensor):
        layout = _Layout(comm, sizes, [p[0].numel() if len(p) else 1 for p in pieces])
        mine = layout.pack([p.reshape(-1) for p in pieces], comm.rank)
        rows = [torch.empty_like(mine) for _ in range(comm.world)]
        dist.all_gather(rows, mine)
        ctx.comm, ctx.layout = comm, layout
        return tuple(
            torch.cat(parts).reshape(n, *p.shape[1:])
            for parts, n, p in zip(layout.unpack(rows), sizes, pieces, strict=True)
        )

    @staticmethod
    def backward(ctx, *grads: Tensor):
        comm, layout = ctx.comm, ctx.layout
        flat = [g.reshape(len(g), -1) for g in grads]
        shares = [[t[comm.shard(len(t), r)].reshape(-1) for t in flat] for r in range(comm.world)]
        total = torch.stack([layout.pack(share, r) for r, share in enumerate(shares)])
        dist.all_reduce(total)
        mine = [parts[comm.rank] for parts in layout.unpack(list(total))]
        return None, None, *(m.reshape(-1, *g.shape[1:]) for m, g in zip(mine, grads, strict=True))


class _Layout:
    """Where the pieces sit in the gathered rows: rank r's row holds its shard of each tensor
    (``sizes[i]`` rows of ``widths[i]`` values) in turn, flattened, then zeros up to the longest
    row (all_gather needs equal lengths)."""

    def __init__(self, comm: Communicator, sizes, widths):
        self.counts = [
            [_rows(comm.shard(n, r)) * w for n, w in zip(sizes, widths, strict=True)]
            for r in range(comm.world)
        ]
        self.longest = max(sum(c) for c in self.counts)

    def pack(self, flat_pieces: list[Tensor], rank: int) -> Tensor:
        flat = torch.cat(flat_pieces)
        return torch.cat([flat, flat.new_zeros(self.longest - sum(self.counts[rank]))])

    def unpack(self, rows: list[Tensor]) -> list[list[Tensor]]:
        """Per tensor, its pieces from every rank in rank order."""
        by_rank = [torch.split(row[: sum(c)], c) for row, c in zip(rows, self.counts, strict=True)]
        return [list(parts) for parts in zip(*by_rank, strict=True)]


def _rows(part: slice) -> int:
    return part.stop - part.start


#: the one-process communicator (no torch.distributed)
SINGLE = Communicator()

_current: Communicator | None = None


def launched() -> bool:
    """Whether this process was started by torchrun (or an equivalent launcher) with more than
    one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def communicator(device_type: str = "cpu", timeout_s: float = 1800.0) -> Communicator:
    """This process's communicator: :data:`SINGLE` unless launched with several ranks, else the
    process group, initialised on first use (NCCL when the run computes on CUDA, gloo
    otherwise) and torn down at exit."""
    global _current
    if _current is not None:
        return _current
    if not launched():
        _current = SINGLE
        return _current
    missing = [v for v in LAUNCH_VARIABLES if v not in os.environ]
    if missing:
        raise PinnsolveError(
            f"WORLD_SIZE > 1 but {', '.join(missing)} not set: start pinnsolve with torchrun "
            "(torchrun --nproc-per-node N -m pinnsolve solve FILE)"
        )
    local_rank = int(os.environ["LOCAL_RANK"])
    backend = "gloo"
    if device_type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise PinnsolveError(
                f"local rank {local_rank} has no GPU: this node has "
                f"{torch.cuda.device_count()}; start at most that many processes per node"
            )
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    _bind_torch_defaults_first()
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    _current = Communicator(dist.get_rank(), dist.get_world_size(), local_rank)
    atexit.register(_close)
    return _current


def _bind_torch_defaults_first() -> None:
    """Import ``torch.distributed.nn.functional`` before the process group exists.

    Why: its functions take ``group=group.WORLD`` as a default argument, evaluated on import.
    Imported after ``init_process_group`` (``torch._dynamo`` imports it, and ``torch.func``
    imports ``torch._dynamo`` on first use, as the Gauss–Newton Jacobian does), ten default
    tuples hold the process group, so :func:`_close` could not free it: gloo's worker threads
    outlived ``destroy_process_group`` into interpreter finalization (measured: still running
    after it, and gone after it when imported first).
    """
    import torch.distributed.nn.functional  # noqa: F401


def _close() -> None:
    """At interpreter exit (``atexit`` runs before finalization): destroy the process group,
    which joins gloo's worker threads while they can still take the GIL.

    Why: a worker thread drops its last collective's tensors after the collective is marked
    done; a tensor that Python has released by then needs the GIL to be freed. Once the
    interpreter is finalizing, taking the GIL ends the thread (``pthread_exit``), its unwinding
    crosses a ``noexcept`` destructor (``~AsyncWork``) and the rank aborts with "terminate called
    without an active exception" after it finished (gdb: thread ``pt_gloo_runloop`` in
    ``take_gil`` under ``Py_FinalizeEx``). Destroyed here, the group's threads are joined first.
    """
    if dist.is_initialized():
        dist.destroy_process_group()
