"""Min-max normalization to [-1, 1], the space diffusion policies are trained in."""

from __future__ import annotations

from typing import Any

import numpy as np


class MinMaxNormalizer:
    """Map `[low, high]` per dimension affinely onto `[-1, 1]`, for numpy arrays or torch tensors.

    A constant dimension (`high == low`) is shifted, not scaled: it normalizes to 0 at `low` and
    `unnormalize(normalize(x)) == x` holds for every x, so nothing is divided by zero and nothing
    is lost.
    """

    def __init__(self, low: Any, high: Any):
        low = np.asarray(low, dtype=np.float32).reshape(-1)
        high = np.asarray(high, dtype=np.float32).reshape(-1)
        if low.shape != high.shape:
            raise ValueError(f"low has shape {low.shape}, high has shape {high.shape}; they must match")
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError("normalizer bounds must be finite")
        if np.any(high < low):
            raise ValueError(f"normalizer bounds need high >= low; dims {np.flatnonzero(high < low).tolist()} have high < low")
        self.low = low
        self.high = high
        half_range = (high.astype(np.float64) - low) / 2
        self.center = ((high.astype(np.float64) + low) / 2).astype(np.float32)
        self.center[half_range <= 0] = low[half_range <= 0]
        self.scale = np.where(half_range > 0, half_range, 1.0).astype(np.float32)

    @classmethod
    def fit(cls, data: np.ndarray) -> "MinMaxNormalizer":
        """Bounds from the min and max over all leading axes of `data` (..., dim)."""
        data = np.asarray(data)
        flat = data.reshape(-1, data.shape[-1])
        if flat.shape[0] == 0:
            raise ValueError("cannot fit a normalizer to zero samples")
        return cls(flat.min(axis=0), flat.max(axis=0))

    @property
    def dim(self) -> int:
        return int(self.low.shape[0])

    def normalize(self, x):
        center, scale = self._params_like(x)
        return (x - center) / scale

    def unnormalize(self, y):
        center, scale = self._params_like(y)
        return y * scale + center

    def _params_like(self, x):
        if isinstance(x, np.ndarray) or np.isscalar(x):
            dtype = x.dtype if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating) else np.float32
            return self.center.astype(dtype), self.scale.astype(dtype)
        import torch

        if isinstance(x, torch.Tensor):
            return (
                torch.as_tensor(self.center, device=x.device, dtype=x.dtype),
                torch.as_tensor(self.scale, device=x.device, dtype=x.dtype),
            )
        raise TypeError(f"cannot normalize a {type(x).__name__}; pass a numpy array or a torch tensor")

    def to_dict(self) -> dict[str, list[float]]:
        return {"low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MinMaxNormalizer":
        return cls(d["low"], d["high"])

    def __repr__(self) -> str:
        return f"MinMaxNormalizer(dim={self.dim})"
