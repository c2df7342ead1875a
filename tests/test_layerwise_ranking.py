"""The layer-wise ranking benchmark end to end on a tiny mobilenet supernet: the subnets are spread over FLOPs,
each is retrained once (a second run reuses the finished retraining runs), and the report states the command,
K, the recipe and the wall time."""
from __future__ import annotations

import pandas as pd
import pytest

from hwnas.supernet.spaces import get_space
from hwnas.supernet.trainer import TrainConfig, train

STAGES = [[1.5, 1, 1], [2, 2, 2]]


def test_archs_are_spread_over_flops():
    from hwnas.benchmarks.layerwise_ranking import spread_over_flops
    from hwnas.hardware.counters import flops_m

    space = get_space("mobilenet", stages=STAGES)
    archs = spread_over_flops(space, 5, channels=4, seed=0)
    assert len(set(archs)) == 5
    flops = [flops_m(space.build_subnet(a, channels=4), (1, 3, 32, 32)) for a in archs]
    assert flops[0] == min(flops) and flops[-1] == max(flops) and flops[-1] > 1.5 * flops[0]  # small to large


def test_layerwise_ranking_end_to_end_and_reuses_finished_runs(data_dir, tmp_path):
    from hwnas.benchmarks import layerwise_ranking

    run = tmp_path / "supernet"
    train(TrainConfig(space="mobilenet", space_options={"stages": STAGES}, channels=4, max_images=256, epochs=1,
                      batch_size=64, held_out_images=256, out=str(run), data=str(data_dir), progress=False))
    out = tmp_path / "lr.md"
    argv = ["--space", "mobilenet", "--supernet", str(run), "--k", "3", "--retrain-epochs", "1",
            "--retrain-images", "256", "--retrain-channels", "4", "--zero-cost", "naswot", "--eval-images", "256",
            "--runs", str(tmp_path / "runs"), "--data", str(data_dir), "--out", str(out)]
    assert layerwise_ranking.main(argv) == 0
    text = out.read_text()
    assert "python -m hwnas.benchmarks.layerwise_ranking --space mobilenet" in text
    assert "K = 3 subnets" in text and "1 epochs, 256 training and test images" in text and "wall time" in text
    assert "Target: supernet proxy Kendall tau >= 0.5: measured" in text
    table = pd.read_csv(out.with_suffix(".csv"))
    assert len(table) == 3 and table.standalone_acc.between(0, 100).all()
    metrics = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert {"proxy_acc", "flops_m", "zc:naswot"} <= set(metrics)
    stamps = sorted((tmp_path / "runs").rglob("result.json"))
    mtimes = [p.stat().st_mtime_ns for p in stamps]
    assert layerwise_ranking.main(argv) == 0  # the retraining runs are finished: reused, not run again
    assert [p.stat().st_mtime_ns for p in stamps] == mtimes


def test_layerwise_ranking_refuses_a_supernet_of_another_space(tiny_run, tmp_path):
    from hwnas.benchmarks import layerwise_ranking

    with pytest.raises(SystemExit, match="is a 'nb201' supernet"):
        layerwise_ranking.main(["--space", "mobilenet", "--supernet", str(tiny_run), "--out", str(tmp_path / "x.md")])
    assert not (tmp_path / "x.md").exists()
    with pytest.raises(SystemExit):
        layerwise_ranking.main(["--supernet", str(tiny_run), "--k", "2"])


def test_targets_are_stated_as_measured_met_or_missed():
    from hwnas.benchmarks import layerwise_ranking, spaces

    lines = spaces.target_lines([{"space": "mobilenet", "panel acc %": 54.1, "train min": 15.8},
                                 {"space": "shufflenet", "panel acc %": 24.75, "train min": 50.0},
                                 {"space": "resblock", "panel acc %": 30.0, "train min": 5.0}])
    assert len(lines) == 2  # resblock has no target
    assert "measured 54.1% (met) in 15.8 min (met)" in lines[0]
    assert "measured 24.8% (missed by 20.2 points) in 50.0 min (missed by 5.0 min)" in lines[1]
    metrics = pd.DataFrame({"score": ["proxy_acc", "flops_m"], "kendall_tau": [0.42, 0.6]})
    assert layerwise_ranking.target_line(metrics).endswith("measured 0.420, missed by 0.080 (FLOPs: 0.600).")
    metrics.loc[0, "kendall_tau"] = 0.5
    assert "measured 0.500, met" in layerwise_ranking.target_line(metrics)
