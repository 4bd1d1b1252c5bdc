"""A fixed-size ring buffer of named tensor fields, saved to and loaded from safetensors."""

from __future__ import annotations

from typing import Mapping

import torch

from postbc.errors import PostBCError


class ReplayBuffer:
    """Transitions as named fields, e.g. obs (D,), action (A,), reward (), next_obs (D,), done ().

    All storage is preallocated float32 on CPU; `add` takes a batch, `sample` returns a dict of
    (batch, *shape) tensors drawn uniformly with replacement from what is stored.
    """

    def __init__(self, capacity: int, fields: Mapping[str, tuple[int, ...]]):
        self.capacity = int(capacity)
        self.fields = {k: tuple(v) for k, v in fields.items()}
        self.data = {k: torch.zeros((self.capacity, *shape)) for k, shape in self.fields.items()}
        self.ptr = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, **batch: torch.Tensor) -> None:
        if set(batch) != set(self.fields):
            raise ValueError(f"replay add needs fields {sorted(self.fields)}, got {sorted(batch)}")
        n = len(next(iter(batch.values())))
        idx = (self.ptr + torch.arange(n)) % self.capacity
        for k, v in batch.items():
            self.data[k][idx] = torch.as_tensor(v, dtype=torch.float32).reshape(n, *self.fields[k])
        self.ptr = (self.ptr + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """A uniform batch (with replacement), moved to `device` (the learner's) when given."""
        idx = torch.randint(0, self.size, (batch_size,), generator=generator)
        return {k: v[idx].to(device) if device is not None else v[idx] for k, v in self.data.items()}

    def all(self) -> dict[str, torch.Tensor]:
        """Everything stored, oldest first."""
        if self.size < self.capacity:
            return {k: v[: self.size] for k, v in self.data.items()}
        order = torch.cat([torch.arange(self.ptr, self.capacity), torch.arange(0, self.ptr)])
        return {k: v[order] for k, v in self.data.items()}

    def state(self, prefix: str = "replay.") -> tuple[dict[str, torch.Tensor], dict]:
        """Tensors (only the filled part, oldest first) and JSON meta for a checkpoint."""
        tensors = {prefix + k: v.clone() for k, v in self.all().items()}
        meta = {"capacity": self.capacity, "size": self.size, "fields": {k: list(s) for k, s in self.fields.items()}}
        return tensors, meta

    def load_state(self, tensors: Mapping[str, torch.Tensor], meta: Mapping, prefix: str = "replay.") -> None:
        saved_fields = {k: tuple(s) for k, s in meta["fields"].items()}
        if saved_fields != self.fields:
            raise PostBCError(f"saved replay buffer has fields {saved_fields}, this run expects {self.fields}; resume with the same task and checkpoint")
        n = int(meta["size"])
        if n > self.capacity:
            raise PostBCError(f"saved replay buffer holds {n} transitions, more than this run's capacity {self.capacity}; resume with the same --replay-size")
        for k in self.fields:
            self.data[k].zero_()
            self.data[k][:n] = tensors[prefix + k]
        self.size = n
        self.ptr = n % self.capacity

    def save(self, stem) -> None:
        from postbc.io.checkpoint import save_checkpoint

        tensors, meta = self.state()
        save_checkpoint(stem, tensors, {"replay": meta})

    @classmethod
    def load(cls, stem) -> "ReplayBuffer":
        from postbc.io.checkpoint import load_checkpoint

        tensors, meta = load_checkpoint(stem)
        m = meta["replay"]
        buf = cls(m["capacity"], {k: tuple(s) for k, s in m["fields"].items()})
        buf.load_state(tensors, m)
        return buf
