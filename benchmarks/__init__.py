"""Tabular benchmarks and the experiments that hold hwnas results against them.

Tables, each keyed by the NAS-Bench-201 arch index (0..15624) and the arch string stored in the file:

- ``benchmarks.nb201_truth.NB201Truth``: NAS-Bench-201 / NATS-Bench tss ground-truth accuracy (%).
- ``benchmarks.hwnasbench.HWNASBench``: HW-NAS-Bench latency (ms) / energy (mJ) on six devices.
- ``benchmarks.device_table.DeviceTable``: a user's own per-arch table for a device HW-NAS-Bench lacks.

Experiments run as ``python -m benchmarks.<name>``.

Layering: this package may import ``supernet.spaces``; it must not import ``evolve``.
"""
