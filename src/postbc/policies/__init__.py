"""Policies: diffusion policy over action chunks, vectorized ensembles, loading a pretrained run.

Submodules import torch; this package itself imports nothing heavy.
"""
