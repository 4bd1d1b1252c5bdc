"""Scripted demonstrators ("operators") per task and `collect`, which writes their demos to HDF5."""

from postbc.experts.base import Expert
from postbc.experts.registry import MixedExpert, expert_operators, get_expert, register_expert, register_expert_loader

__all__ = ["Expert", "MixedExpert", "expert_operators", "get_expert", "register_expert", "register_expert_loader"]
