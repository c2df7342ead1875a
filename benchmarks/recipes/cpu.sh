#!/usr/bin/env bash
# The CPU recipe end to end (about 3.5 h on 2 idle cores: 1.2 h training, 1.6 h ranking, 0.7 h fronts): train
# SPOS, GDAS and DARTS supernets (C=8, N=1, the 25k-image CIFAR-10 search split; epochs per mode in
# benchmarks/recipes/cpu_<mode>.yaml), rank 1,000 canonical cells with each against NAS-Bench-201 (BN
# recalibrated and batch statistics on 1,000 held-out images, BN recalibrated on 5,000), and search proxy
# fronts per HW-NAS-Bench device with each. Writes benchmarks/results/ranking.md/.csv/.png and fronts.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
for mode in spos gdas darts; do
    resume=""; [ -f "runs/cpu_${mode}/supernet.pt" ] && resume="--resume"
    hwnas train --config "benchmarks/recipes/cpu_${mode}.yaml" --quiet $resume
done
# Published one-shot / few-shot supernet estimates (aoiang/few-shot-NAS, supernet_info/) as a yardstick, where present.
refs=(); ref_dir=../shared/data/nb201/fewshot_supernet_info
[ -d "$ref_dir" ] && refs=(--reference "one-shot=$ref_dir/one-shot-supernet.json" "few-shot=$ref_dir/few-shot-supernet.json")
python -m hwnas.benchmarks.ranking --supernet runs/cpu_spos runs/cpu_gdas runs/cpu_darts --sample 1000 \
    --proxy recalibrate:1000 batch:1000 recalibrate:5000 ${refs[@]+"${refs[@]}"}
python -m hwnas.benchmarks.fronts --supernet runs/cpu_spos runs/cpu_gdas runs/cpu_darts --algorithms nsga2 random \
    --pop-size 20 --generations 10 --seeds 0 1 --stats-samples 300 --eval-images 5000 --calib-batches 4 ${refs[@]+"${refs[@]}"}
