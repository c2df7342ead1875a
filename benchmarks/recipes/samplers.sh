#!/usr/bin/env bash
# SPOS path samplers and few-shot NAS against plain SPOS at (about) equal training compute, on the quickstart's
# CPU recipe (NB201, C=8, N=1, the 25k-image CIFAR-10 search split, batch 64, 12 path-epochs each; about 14
# min of training on 2 cores): uniform (the paper's), canonical (uniform over isomorphism classes), FairNAS
# strict fairness (5 paths per step, so 2 epochs = 10 path-epochs and 3 epochs = 15 bracket the budget), and
# few-shot NAS split on edge 0 (input -> node 1, which every longer path crosses): parent 7 epochs, then 5 parts
# x 1 epoch. Then ranks 1,000 canonical cells with each (the quickstart's proxy settings: BN recalibrated on 2
# batches, 2,000 held-out images; about 25 min), alone and inside the default proxy. Writes
# benchmarks/results/samplers.md/.csv/.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
common=(--mode spos --channels 8 --cells 1 --max-images 25000 --batch-size 64 --quiet)
train() {  # train OUT [flags...], resuming a run that exists
    local out=$1; shift
    local resume=""; [ -f "$out/supernet.pt" ] && resume="--resume"
    hwnas train "${common[@]}" --out "$out" "$@" $resume
}
train runs/samplers/uniform --epochs 12
train runs/samplers/canonical --epochs 12 --sampler canonical
train runs/samplers/fair_e2 --epochs 2 --sampler fair
train runs/samplers/fair_e3 --epochs 3 --sampler fair
train runs/samplers/fewshot_e0 --epochs 8 --few-shot-edge 0 --few-shot-epochs 1
python -m hwnas.benchmarks.ranking --supernet runs/samplers/uniform runs/samplers/canonical runs/samplers/fair_e2 \
    runs/samplers/fair_e3 runs/samplers/fewshot_e0 --sample 1000 --proxy recalibrate:2000 --calib-batches 2 --default-proxy \
    --out benchmarks/results/samplers.md
