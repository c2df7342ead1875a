"""Supernets: search spaces, candidate ops, weight-sharing networks, training modes, data and proxy evaluation.

This package knows nothing of search or of hardware (the FBNet/LuffyNet mode alone may take a latency
table from `hardware`). It must not import `evolve` or `benchmarks`.
"""
