"""Training state (modules, optimizers, RNGs, counters) as flat tensors + JSON: no pickle.

`flatten` walks nested dicts / lists / tuples, moves every tensor into a flat name -> tensor map
and leaves a JSON skeleton that points at those names; `unflatten` reverses it. Dict keys that are
not strings (optimizer state is keyed by parameter index) are kept with their type.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch


def flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().clone()
        return {"__tensor__": prefix}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: flatten(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}}
        return {"__items__": [[k, flatten(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at '{prefix}' in a checkpoint")


def unflatten(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, list):
        return [unflatten(v, tensors) for v in skeleton]
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__dict__" in skeleton:
            return {k: unflatten(v, tensors) for k, v in skeleton["__dict__"].items()}
        if "__items__" in skeleton:
            return {k: unflatten(v, tensors) for k, v in skeleton["__items__"]}
        if "__tuple__" in skeleton:
            return tuple(unflatten(v, tensors) for v in skeleton["__tuple__"])
    return skeleton


def rng_state(np_rng: np.random.Generator, torch_gen: torch.Generator | None = None) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np_rng.bit_generator.state}
    if torch_gen is not None:
        state["torch_gen"] = torch_gen.get_state()
    return state


def set_rng_state(state: Mapping[str, Any], np_rng: np.random.Generator, torch_gen: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    np_rng.bit_generator.state = state["numpy"]
    if torch_gen is not None and "torch_gen" in state:
        torch_gen.set_state(state["torch_gen"])


def module_state(named: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer]):
    """Module weights and optimizer states as (tensors, JSON skeleton of the optimizers)."""
    tensors = {f"{k}.{n}": t for k, m in named.items() for n, t in m.state_dict().items()}
    meta = {k: flatten(o.state_dict(), f"opt.{k}", tensors) for k, o in optimizers.items()}
    return tensors, meta


def load_module_state(named, optimizers, tensors, meta) -> None:
    for k, m in named.items():
        m.load_state_dict({n[len(k) + 1:]: t for n, t in tensors.items() if n.startswith(k + ".")})
    for k, o in optimizers.items():
        o.load_state_dict(unflatten(meta[k], tensors))
