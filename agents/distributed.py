"""Data-parallel training on torch.distributed: rank setup from torchrun's variables, global statistics, gradient
averaging, and the rank-0-only rule for files.

Launch with ``torchrun --nproc_per_node N -m agents.app.cli train ...`` (or ``textgen-env train --nproc N``). Every rank
holds the same weights (rank 0's are broadcast at the start), collects its own share of each iteration's episodes
with its own env seeds and sampler, and takes the same optimizer steps: each minibatch's gradients are summed over
the ranks with every rank's gradient weighted by its number of loss terms (tokens), so the step is the one a single
process would take on the union of the ranks' minibatches. The ranks agree on the number of minibatches of an epoch
(`DistributedContext.maximum`): in conversations (TextDialogue-v0) a rank's episodes are replies, their number varies,
and a rank with fewer minibatches takes part in the others' steps with an empty one (weight 0, no gradient), so the
collectives stay in lockstep. Advantage whitening and the KL controller read
statistics all-reduced over the ranks; GRPO groups never straddle two ranks. Only rank 0 evaluates, logs and
writes files; checkpoints carry every rank's random-generator states, so a run resumes exactly with the same world
size. Backend: NCCL when the run uses CUDA (device ``cuda:LOCAL_RANK``), gloo on CPU.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from agents.functional import masked_whiten

__all__ = ["SINGLE_PROCESS", "DistributedContext"]

TIMEOUT_VARIABLE = "TEXTGEN_ENV_DIST_TIMEOUT"
"""Seconds a rank waits in a collective for the others before it stops with an error (default 600)."""


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a data-parallel run (world size 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this rank evaluates, logs and writes files (rank 0)."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls, device: str = "cpu") -> DistributedContext:
        """The context of a torchrun-launched process (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``), joining its
        process group (NCCL for CUDA, else gloo; timeout from ``TEXTGEN_ENV_DIST_TIMEOUT``); world size 1 otherwise.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return SINGLE_PROCESS
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            cuda = str(device).startswith("cuda")
            if cuda:
                torch.cuda.set_device(local_rank)
            seconds = float(os.environ.get(TIMEOUT_VARIABLE, "600"))
            dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=seconds))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
        if "OMP_NUM_THREADS" not in os.environ:  # ranks on one machine share its cores instead of oversubscribing
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
        return cls(rank=rank, world_size=world_size, local_rank=local_rank)

    def device(self, device: str) -> str:
        """This rank's device: ``cuda:LOCAL_RANK`` when the run asks for ``cuda``, else `device` unchanged."""
        return f"cuda:{self.local_rank}" if self.enabled and str(device) == "cuda" else str(device)

    def share(self, total: int, what: str, multiple_of: int = 1) -> int:
        """This rank's part of `total` (episodes per iteration, minibatch size): ``total / world_size``.

        Raises:
            ValueError: when the world size does not divide `total` into parts that are multiples of `multiple_of`.
        """
        if total % self.world_size or (total // self.world_size) % multiple_of:
            unit = f" made of whole groups of {multiple_of}" if multiple_of > 1 else ""
            raise ValueError(f"Expected {what} to split evenly over {self.world_size} ranks{unit}, got {what}={total}")
        return total // self.world_size

    # -------------------------------------------------------------------------------------------- collectives
    def _device_of(self, tensor: torch.Tensor) -> torch.Tensor:
        if dist.get_backend() == "nccl" and not tensor.is_cuda:
            return tensor.cuda()
        return tensor

    def sum(self, values: Iterable[float | torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """The element-wise sum over the ranks of float64 `values` (the values themselves in a single process)."""
        tensor = torch.as_tensor(values if isinstance(values, torch.Tensor) else list(values), dtype=torch.float64)
        if not self.enabled:
            return tensor
        moved = self._device_of(tensor.clone())
        self._collective(dist.all_reduce, moved, op=dist.ReduceOp.SUM)
        return moved.cpu()

    def maximum(self, value: int) -> int:
        """The largest of the ranks' integers `value` (the value itself in a single process)."""
        if not self.enabled:
            return int(value)
        moved = self._device_of(torch.tensor([int(value)], dtype=torch.int64))
        self._collective(dist.all_reduce, moved, op=dist.ReduceOp.MAX)
        return int(moved.cpu()[0])

    def mean(self, total: float, count: float) -> float:
        """``sum_r total_r / sum_r count_r``: a mean over every rank's items from each rank's sum and count."""
        total, count = self.sum([total, count]).tolist()
        return total / max(count, 1.0)

    def masked_whiten(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`agents.functional.masked_whiten` with the mean and (unbiased) variance of every rank's valid entries."""
        if not self.enabled:
            return masked_whiten(values, mask)
        valid = mask.bool()
        wide = values.double()
        count, total = self.sum([valid.sum(), torch.where(valid, wide, 0.0).sum()]).tolist()
        mean = total / max(count, 1.0)
        squares = float(self.sum([torch.where(valid, (wide - mean) ** 2, 0.0).sum()])[0])
        variance = squares / max(count, 1.0) * count / max(count - 1.0, 1.0)
        whitened = (wide - mean) / (variance + 1e-8) ** 0.5
        return torch.where(valid, whitened, 0.0).to(values.dtype)

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter], weight: float) -> None:
        """Replace each rank's gradients by ``sum_r weight_r * grad_r / sum_r weight_r`` (one all-reduce).

        `weight` is the number of terms this rank's loss averaged over (its minibatch's tokens), so the result is
        the gradient of the mean over all ranks' terms. Missing gradients count as zeros.
        """
        if not self.enabled:
            return
        params = [p for p in parameters if p.requires_grad]
        total = float(self.sum([weight])[0])
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads]).mul_(weight)
        flat = self._device_of(flat)
        self._collective(dist.all_reduce, flat, op=dist.ReduceOp.SUM)
        flat.div_(max(total, 1e-12))
        offset = 0
        for p, g in zip(params, grads):
            size = g.numel()
            p.grad = flat[offset : offset + size].view_as(g).to(g.device, g.dtype)
            offset += size

    def broadcast_tensors(self, tensors: Iterable[torch.Tensor]) -> None:
        """Copy rank 0's values of `tensors` (parameters, buffers) into every rank's, in place."""
        if not self.enabled:
            return
        for tensor in tensors:
            moved = self._device_of(tensor.data)
            self._collective(dist.broadcast, moved, src=0)
            if moved is not tensor.data:
                tensor.data.copy_(moved)

    def gather_objects(self, value: object) -> list[object]:
        """Every rank's `value`, in rank order (on every rank)."""
        if not self.enabled:
            return [value]
        gathered: list[object] = [None] * self.world_size
        self._collective(dist.all_gather_object, gathered, value)
        return gathered

    def barrier(self) -> None:
        if self.enabled:
            self._collective(dist.barrier)

    def _collective(self, operation, *args, **kwargs):
        """Run a collective; a peer that died or hung past the timeout becomes one clear error on this rank."""
        try:
            return operation(*args, **kwargs)
        except (RuntimeError, dist.DistError) as error:
            raise RuntimeError(
                f"Rank {self.rank} of {self.world_size}: another rank stopped or did not answer within the process "
                f"group's timeout (TEXTGEN_ENV_DIST_TIMEOUT, default 600 s), so this rank stops too: {error}"
            ) from error


SINGLE_PROCESS = DistributedContext()
"""The context of an ordinary one-process run."""
