"""Demonstrations: robomimic HDF5 read / write / validate, `DemoDataset`, normalizers, bootstrap."""

from postbc.data.bootstrap import BOOTSTRAP_KINDS, bootstrap_counts
from postbc.data.dataset import DemoDataset
from postbc.data.normalizer import MinMaxNormalizer
from postbc.data.robomimic import Demo, DemoFile, DemoWriter, read_demos, read_env_args, write_demos

__all__ = [
    "BOOTSTRAP_KINDS", "Demo", "DemoDataset", "DemoFile", "DemoWriter", "MinMaxNormalizer",
    "bootstrap_counts", "read_demos", "read_env_args", "write_demos",
]
