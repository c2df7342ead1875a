#!/usr/bin/env bash
# The GPU recipe end to end (one GPU): train SPOS, GDAS and DARTS supernets with NAS-Bench-201's budgets,
# then rank 1,000 canonical cells with each against NAS-Bench-201 and search proxy fronts per device.
set -euo pipefail
cd "$(dirname "$0")/../.."
# GPUS=N trains each supernet data-parallel on N GPUs of this machine (torchrun + DDP over nccl; the YAML's
# batch size is the global batch, so the run computes what one GPU computes, see README "More than one machine").
GPUS=${GPUS:-1}
for mode in spos gdas darts; do
    resume=""; [ -f "runs/gpu_${mode}/supernet.pt" ] && resume="--resume"
    if [ "$GPUS" -gt 1 ]; then
        torchrun --standalone --nproc-per-node "$GPUS" -m hwnas train --config "benchmarks/recipes/gpu_${mode}.yaml" \
            --quiet $resume
    else
        hwnas train --config "benchmarks/recipes/gpu_${mode}.yaml" --quiet $resume
    fi
done
# Published one-shot / few-shot supernet estimates (aoiang/few-shot-NAS, supernet_info/) as a yardstick, where present.
refs=(); ref_dir=../shared/data/nb201/fewshot_supernet_info
[ -d "$ref_dir" ] && refs=(--reference "one-shot=$ref_dir/one-shot-supernet.json" "few-shot=$ref_dir/few-shot-supernet.json")
python -m hwnas.benchmarks.ranking --supernet runs/gpu_spos runs/gpu_gdas runs/gpu_darts --sample 1000 \
    --out benchmarks/results/ranking_gpu.md ${refs[@]+"${refs[@]}"}
python -m hwnas.benchmarks.fronts --supernet runs/gpu_spos runs/gpu_gdas runs/gpu_darts --algorithms nsga2 random \
    --out benchmarks/results/fronts_gpu.md ${refs[@]+"${refs[@]}"}
