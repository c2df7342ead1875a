"""Tabular benchmarks, loaded once and handed to whoever needs them; each keyed by the NAS-Bench-201 arch
index (0..15624) and the arch string stored in the file:

- `nb201_truth.NB201Truth`: NAS-Bench-201 / NATS-Bench tss ground-truth accuracy (%);
- `hwnasbench.HWNASBench`: HW-NAS-Bench latency (ms) / energy (mJ) on six devices;
- `device_table.DeviceTable`: a user's own per-arch table for a device HW-NAS-Bench lacks;
- `reference_scores`: per-arch scores from elsewhere (a published supernet's estimates).

Layering: may import `hwnas.core` and `hwnas.supernet.spaces`; never `evolve`, the experiments or the CLI.
"""
