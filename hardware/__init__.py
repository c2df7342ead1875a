"""Hardware cost without a table: timing on a device, per-block lookup tables, the remote device agent,
params/FLOPs/size counters. Imports nothing of ours (no `supernet`, `evolve` or `benchmarks`)."""
