"""HTAS (supernet.modes.htas): a larger lambda_cost gives a lower expected latency under the tailoring
report's curves, the derived widths/depths are reported with a measured latency, and bad input is refused."""
from __future__ import annotations

import json

import pytest
import torch

from hwnas.core.errors import UsageError
from hwnas.supernet.modes.htas import HTAS, stage_curves
from hwnas.supernet.spaces import get_space
from hwnas.supernet.trainer import TrainConfig

OPTIONS = {"stages": [[1.5, 2, 1], [2, 2, 2]], "hidden": [[8, 16, 24], [12, 24, 36]], "hidden_channels": 4}
CURVES = [{"k": 0.01, "a": 1.0, "b": 0.1}, {"k": 0.02, "a": 1.2, "b": 0.1}]  # synthetic: latency grows with width


def _report(tmp_path):
    stages = [{"stage": s, "candidates": OPTIONS["hidden"][s], "latency_ms": [1.0, 2.0, 3.0], "fit": CURVES[s],
               "chosen": OPTIONS["hidden"][s]} for s in range(2)]
    path = tmp_path / "tailored.json"
    path.write_text(json.dumps({"space": "mobilenet", "channels": 4, "space_options": OPTIONS, "stages": stages}))
    return path


def test_a_larger_lambda_gives_a_lower_expected_latency():
    space = get_space("mobilenet", **OPTIONS)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    latency = []
    for lam in (0.0, 0.1, 1.0, 10.0):
        torch.manual_seed(0)
        net = space.build_supernet(channels=4)
        mode = HTAS(net, space, torch.optim.SGD(net.parameters(), lr=0.01), curves=CURVES, lambda_cost=lam,
                    arch_lr=0.02)
        for _ in range(30):
            mode.train_step(x, y, (x, y))
        latency.append(float(mode.expected_latency().detach()))
    assert latency[0] > latency[1] > latency[2] and latency[3] <= latency[2] + 1e-6, latency


def test_the_expected_latency_is_the_curves_at_the_expected_width():
    space = get_space("mobilenet", **OPTIONS)
    mode = HTAS(space.build_supernet(channels=4), space, torch.optim.SGD([torch.zeros(1)], lr=0.1), curves=CURVES)
    probs = torch.zeros(mode.alpha.shape)
    names = [space.choices(d) for d in range(4)]
    probs[0, names[0].index("k3h8")] = probs[0, names[0].index("k5h24")] = 0.5  # E[width] 16, never skips
    probs[1, names[1].index("skip")] = 1.0  # skipped: costs nothing
    probs[2, names[2].index("k3h12")] = 1.0
    probs[3, names[3].index("k7h36")] = probs[3, names[3].index("skip")] = 0.5
    want = [0.01 * 16 + 0.1, 0.0, 0.02 * 12 ** 1.2 + 0.1, 0.5 * (0.02 * 36 ** 1.2 + 0.1)]
    torch.testing.assert_close(mode.layer_latency(probs), torch.tensor(want), rtol=1e-5, atol=1e-6)


def test_an_htas_run_reports_widths_depths_and_measured_latency(data_dir, tmp_path, capsys):
    from hwnas.cli import main

    run = tmp_path / "run"
    argv = ["train", "--mode", "htas", "--space", "mobilenet", "--tailored", str(_report(tmp_path)),
            "--channels", "4", "--max-images", "128", "--held-out-images", "64", "--lambda-cost", "0.5",
            "--data", str(data_dir), "--out", str(run), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "depth per stage" in out and "ms measured here" in out
    result = json.loads((run / "result.json").read_text())
    assert len(result["derived_widths"]) == 4 and len(result["derived_depths"]) == 2
    assert result["derived_measured_latency_ms_cpu"] > 0
    assert json.loads((run / "config.json").read_text())["tailoring_report"] == str(_report(tmp_path))


def test_htas_errors(tmp_path):
    with pytest.raises(UsageError, match="mode 'htas' needs the tailoring report"):
        TrainConfig(mode="htas", space="mobilenet").validate()
    with pytest.raises(UsageError, match="--lambda-cost must be a number >= 0, got -1"):
        TrainConfig(mode="htas", space="mobilenet", tailoring_report=str(_report(tmp_path)),
                    lambda_cost=-1).validate()
    with pytest.raises(UsageError, match="are htas options; mode 'gdas'"):
        TrainConfig(mode="gdas", lambda_cost=2.0).validate()
    space = get_space("mobilenet", stages=OPTIONS["stages"])
    with pytest.raises(UsageError, match="searches tailored widths .* layer 0 has 'k3e3'"):
        HTAS(space.build_supernet(channels=4), space, torch.optim.SGD([torch.zeros(1)], lr=0.1), curves=CURVES)
    (tmp_path / "bad.json").write_text(json.dumps({"stages": [{"fit": {"k": 1}}]}))
    with pytest.raises(UsageError, match="not a `hwnas space tailor` report"):
        stage_curves(tmp_path / "bad.json")
