"""Benchmarks: the tables hwnas results are held against (`tables/`: NAS-Bench-201 ground truth, HW-NAS-Bench, a
user's device tables, published reference scores), and the experiments that do it, each run as
`python -m hwnas.benchmarks.<name>` (ranking, fronts, latency, spaces, train_speed) with its results in
`benchmarks/results/`.

Layering: the tables may import `hwnas.core` and `hwnas.supernet.spaces` only; the experiments import anything;
nothing imports the experiments (setup.cfg, [importlinter]).
"""
