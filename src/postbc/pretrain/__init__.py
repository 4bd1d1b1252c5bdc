"""Pretraining: bootstrap-ensemble posterior, target-noise transforms, one trainer, the `pretrain` command.
"""
