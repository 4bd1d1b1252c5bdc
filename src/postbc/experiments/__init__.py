"""Sweeps of experiments (a DAG of command runs on a local pool or Ray) and the report built from them."""
