"""FBNet / LuffyNet mode (supernet.modes.fbnet): a very slow op loses its architecture weight on every
decision, the size constraint pushes the derived arch under the limit, a LUT becomes an exact per-choice
table, and the mode's bad input gets one-line errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas.core.errors import UsageError
from hwnas.hardware.choice_costs import ChoiceCosts
from hwnas.hardware.lut import LatencyTable
from hwnas.supernet.modes import get_mode
from hwnas.supernet.costs import latency_costs, size_costs
from hwnas.supernet.modes.fbnet import FBNet
from hwnas.supernet.spaces import get_space
from hwnas.supernet.trainer import TrainConfig, train

CONV3 = 3  # NB201_OPS: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3


def _table(tmp_path, slow: int = CONV3, slow_ms: float = 1000.0) -> str:
    costs = [[slow_ms if op == slow else 1.0 for op in range(5)] for _ in range(6)]
    return str(ChoiceCosts(costs, intercept=2.0, source="synthetic").save(tmp_path / "costs.json"))


def test_a_very_slow_op_ends_with_the_lowest_weight_on_every_decision(data_dir, tmp_path):
    cfg = TrainConfig(mode="fbnet", latency_table=_table(tmp_path), latency_alpha=1.0, arch_lr=0.01, channels=4,
                      cells=1, max_images=256, epochs=2, batch_size=64, held_out_images=128, data=str(data_dir),
                      out=str(tmp_path / "run"), progress=False)
    result = train(cfg)
    probs = np.array(result["alpha_softmax"])
    assert (probs.argmin(axis=1) == CONV3).all(), probs
    assert "nor_conv_3x3" not in result["derived_arch"]
    assert result["derived_table_latency_ms"] == pytest.approx(2.0 + 6.0)  # six 1-ms choices and the intercept
    assert result["derived_size_mb"] > 0 and result["latency_table"] == "synthetic"


def test_the_warm_up_trains_only_the_weights():
    torch.manual_seed(0)
    space = get_space("nb201")
    net = space.build_supernet(channels=4, cells=1)
    weights = torch.optim.SGD(net.parameters(), lr=0.1)
    mode = FBNet(net, space, weights, latency=ChoiceCosts([[0.0, 1, 2, 3, 4]] * 6), latency_term="additive",
                 arch_lr=0.05, warmup_epochs=1)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    alpha, conv = mode.alpha.detach().clone(), next(net.parameters()).detach().clone()
    mode.on_epoch_start(0, 2)
    for _ in range(3):
        mode.train_step(x, y, (x, y))
    assert torch.equal(mode.alpha, alpha) and not torch.equal(next(net.parameters()), conv)
    mode.on_epoch_start(1, 2)
    mode.train_step(x, y, (x, y))
    assert not torch.equal(mode.alpha, alpha)


def test_the_size_constraint_pushes_the_derived_arch_under_the_limit():
    torch.manual_seed(0)
    space = get_space("nb201")
    net = space.build_supernet(channels=4, cells=1)
    size = size_costs(space, 4, 1)
    assert size.fit["r2"] == pytest.approx(1.0)  # parameters are additive over edges
    largest = tuple([CONV3] * 6)
    free = ChoiceCosts([[0.0] * 5 for _ in range(6)])
    limit = 0.5 * (size.of(largest) + size.of((0,) * 6))

    mode = FBNet(net, space, torch.optim.SGD(net.parameters(), lr=0.0), latency=free, size=size,
                 size_limit_mb=limit, latency_term="additive", arch_lr=0.05)
    with torch.no_grad():
        mode.alpha[:, CONV3] = 1.0  # start from the largest cell, far over the limit
    assert mode.derived_arch() == largest and size.of(largest) > 1.5 * limit
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    for _ in range(40):
        mode.train_step(x, y, (x, y))
    assert torch.isfinite(mode.alpha).all() and size.of(mode.derived_arch()) <= limit
    assert mode.summary()["derived_size_mb"] == pytest.approx(size.of(mode.derived_arch()))


def test_a_lut_becomes_an_exact_per_choice_table(tmp_path):
    space = get_space("mobilenet", stages=[[1.5, 1, 1], [2, 2, 2]])
    rng = np.random.default_rng(0)
    names: set[str] = set()
    for i in range(len(space.num_choices)):
        for k in range(space.num_choices[i]):
            arch = [0] * len(space.num_choices)
            arch[i] = k
            names.update(space.arch_blocks(tuple(arch)))
    entries = {b: {"median_ms": float(rng.uniform(0.1, 3.0)), "iqr_ms": 0.0, "cv": 0.0, "input_shape": [1]}
               for b in sorted(names)}
    path = LatencyTable(target={"name": "toy"}, settings={}, entries=entries).save(tmp_path / "lut.json")
    costs = latency_costs(str(path), space)
    assert costs.fit["r2"] == pytest.approx(1.0) and costs.source.startswith("LUT")
    table = LatencyTable.load(path)
    for arch in [space.sample(rng) for _ in range(10)]:
        assert costs.of(arch) == pytest.approx(table.predict(space.arch_blocks(arch)), abs=1e-9)
    assert latency_costs(_table(tmp_path), get_space("nb201")).source == "synthetic"  # a cost table as it is
    from hwnas.cli import main

    run = tmp_path / "run"  # the command line: `--lut` names the LUT
    assert main(["train", "--mode", "fbnet", "--space", "mobilenet", "--space-option", "stages=[[1.5,1,1],[2,2,2]]",
                 "--lut", str(path), "--channels", "4", "--max-images", "64", "--batch-size", "32",
                 "--held-out-images", "32", "--out", str(run), "--quiet"]) == 0
    assert json.loads((run / "result.json").read_text())["latency_table"] == f"LUT {path}"
    net = space.build_supernet(channels=4)  # and the mode trains a layer-wise supernet's mixture with it
    mode = FBNet(net, space, torch.optim.SGD(net.parameters(), lr=0.01), latency=costs,
                 size=size_costs(space, 4, 1), size_limit_mb=0.01)
    before = mode.alpha.detach().clone()
    loss, logits = mode.train_step(torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,)),
                                   (torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))))
    assert np.isfinite(loss) and logits.shape == (4, 10) and not torch.equal(before, mode.alpha.detach())


def test_fbnet_options_and_their_errors(tmp_path):
    assert get_mode("fbnet") is FBNet
    with pytest.raises(UsageError, match="needs --latency-table"):
        TrainConfig(mode="fbnet").validate()
    with pytest.raises(UsageError, match="--latency-table nope.json does not exist"):
        TrainConfig(mode="fbnet", latency_table="nope.json").validate()
    table = _table(tmp_path)
    with pytest.raises(UsageError, match="unknown --latency-term 'mul'; valid: fbnet, additive"):
        TrainConfig(mode="fbnet", latency_table=table, latency_term="mul").validate()
    with pytest.raises(UsageError, match="--size-limit-mb must be a positive number, got -1"):
        TrainConfig(mode="fbnet", latency_table=table, size_limit_mb=-1).validate()
    with pytest.raises(UsageError, match="unknown --fbnet-schedule 'both'; valid: joint, best_worst"):
        TrainConfig(mode="fbnet", latency_table=table, fbnet_schedule="both").validate()
    with pytest.raises(UsageError, match=r"--stage1-epochs must be >= 0 and below --epochs \(2\), got 2"):
        TrainConfig(mode="fbnet", latency_table=table, epochs=2, stage1_epochs=2).validate()
    with pytest.raises(UsageError, match=r"--warmup-epochs must be >= 0 and below --epochs \(2\), got 2"):
        TrainConfig(mode="fbnet", latency_table=table, epochs=2, warmup_epochs=2).validate()
    with pytest.raises(UsageError, match="--warmup-epochs is an fbnet option; mode 'darts'"):
        TrainConfig(mode="darts", warmup_epochs=1).validate()
    with pytest.raises(UsageError, match="--fbnet-schedule is an fbnet option"):
        TrainConfig(mode="gdas", fbnet_schedule="best_worst").validate()
    with pytest.raises(UsageError, match="--latency-table is an fbnet option; mode 'spos'"):
        TrainConfig(mode="spos", latency_table=table).validate()
    with pytest.raises(UsageError, match=r"has choices \[5, 5, 5, 5, 5, 5\] per decision; mobilenet has"):
        latency_costs(table, get_space("mobilenet", stages=[[1.5, 1, 1]]))
    (tmp_path / "x.json").write_text(json.dumps({"costs": "many"}))
    with pytest.raises(ValueError, match="not a per-choice cost table"):
        latency_costs(str(tmp_path / "x.json"), get_space("nb201"))


def test_lut_fit_and_train_with_a_device_target(data_dir, tmp_path, capsys):
    from hwnas.cli import main

    hw = str(data_dir / "HW-NAS-Bench-v1_0.pickle")
    out = tmp_path / "fpga.json"
    assert main(["lut", "fit", "--target", "fpga", "--hwnasbench", hw, "--out", str(out)]) == 0
    fpga = ChoiceCosts.load(out)
    assert fpga.fit["archs"] == 15625 and fpga.fit["r2"] > 0.99  # fpga latency is a per-op sum
    assert "per-choice latency of fpga fitted on 15625 archs: R^2" in capsys.readouterr().out
    run = tmp_path / "run"
    argv = ["train", "--mode", "fbnet", "--target", "fpga", "--hwnasbench", hw, "--size-limit-mb", "1",
            "--channels", "4", "--cells", "1", "--max-images", "128", "--held-out-images", "64",
            "--data", str(data_dir), "--out", str(run), "--quiet"]
    assert main(argv) == 0
    assert "derived arch's table latency" in capsys.readouterr().out
    result = json.loads((run / "result.json").read_text())
    from hwnas.benchmarks.tables.hwnasbench import HWNASBench

    want = HWNASBench.load(hw).lookup([result["derived_arch"]], "fpga_latency")[0]
    assert result["derived_true_latency_ms"] == pytest.approx(want)  # the device's own number, not the fit
    assert json.loads((run / "config.json").read_text())["latency_table"] == str(run / "latency_costs.json")
    assert ChoiceCosts.load(run / "latency_costs.json") == fpga
    assert main(["train", "--mode", "spos", "--target", "fpga", "--out", str(tmp_path / "x")]) == 2
    assert "--target is an fbnet option" in capsys.readouterr().err
    assert main(["lut", "fit", "--target", "nowhere", "--hwnasbench", hw, "--out", str(tmp_path / "y.json")]) == 2
    assert "unknown target 'nowhere'" in capsys.readouterr().err and not (tmp_path / "y.json").exists()


def test_best_worst_rounds_train_exactly_two_best_and_two_worst_choices_per_layer():
    torch.manual_seed(0)
    space = get_space("resblock", stages=[[1, 1, 1], [2, 1, 2]])
    net = space.build_supernet(channels=4)
    free = ChoiceCosts([[0.0] * n for n in space.num_choices])
    names = space.choices(0)
    best, worst = [names.index("basic1"), names.index("basic2")], [names.index("conv"), names.index("dwsep")]
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))

    def trained_choices(mode):
        mode.train_step(x, y, (x, y))
        return [{k for k in range(n) if any(p.grad is not None for p in net.choice_parameters(d, k))}
                for d, n in enumerate(space.num_choices)]

    mode = FBNet(net, space, torch.optim.SGD(net.parameters(), lr=0.01), latency=free,
                 schedule="best_worst", stage1_epochs=1, arch_lr=1e-6)
    with torch.no_grad():
        mode.alpha.zero_()
        mode.alpha[:, best] = torch.tensor([2.0, 1.0])
        mode.alpha[:, worst] = torch.tensor([-1.0, -2.0])
    with_params = [{k for k in range(n) if net.choice_parameters(d, k)} for d, n in enumerate(space.num_choices)]
    assert with_params[0] < with_params[1]  # a stage's first layer projects even in skip and the pools
    mode.on_epoch_start(0, 3)  # stage 1: every choice with weights trains
    assert trained_choices(mode) == with_params
    before = {id(p): p.detach().clone() for k in with_params[0] - set(best + worst) for p in net.choice_parameters(0, k)}
    mode.on_epoch_start(1, 3)  # a stage-2 round
    assert mode.unfrozen == [sorted(best + worst)] * len(space.num_choices)
    assert trained_choices(mode) == [set(best + worst)] * len(space.num_choices)
    for k in with_params[0] - set(best + worst):  # frozen: not even weight decay or momentum moves them
        for p in net.choice_parameters(0, k):
            assert torch.equal(p.detach(), before[id(p)])
    assert mode.summary()["best_worst_unfrozen"][0] == ["basic1", "basic2", "conv", "dwsep"]
    assert torch.isfinite(mode.alpha).all()
