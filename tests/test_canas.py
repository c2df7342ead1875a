"""ENAS / CANAS (supernet.controller, supernet.modes.enas): the controller's sampled cost follows the annealed
target on a toy reward, the schedule and the reward are what their formulas say, and a tiny run writes its
sampled paths and a front that loads and plots like a search's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.core.errors import UsageError
from hwnas.supernet.controller import Controller, CostAnnealing, Reinforce, cost_reward
from hwnas.supernet.trainer import TrainConfig


def test_the_reward_penalises_only_above_the_target():
    assert cost_reward(0.8, 5.0, 10.0, -0.5) == 0.8
    assert cost_reward(0.8, 10.0, 10.0, -0.5) == 0.8
    assert cost_reward(0.8, 40.0, 10.0, -0.5) == pytest.approx(0.8 * 4 ** -0.5)


def test_the_annealing_schedule_warms_up_sweeps_slowly_then_faster():
    s = CostAnnealing(1.0, 9.0, warmup=0.1, slow=0.4, shrink=0.5, min_period=0.01)
    assert s.target(0.0) == s.target(0.099) == 1.0
    assert s.target(0.3) == pytest.approx(5.0) and s.target(0.4999) == pytest.approx(9.0, abs=0.01)
    assert s.target(0.5) == pytest.approx(1.0) and s.target(0.6) == pytest.approx(5.0)  # first fast sweep: 0.2
    assert s.target(0.71) == pytest.approx(1.8) and s.target(0.75) == pytest.approx(5.0)  # then 0.1
    with pytest.raises(ValueError, match="0 < F_min < F_max"):
        CostAnnealing(5.0, 1.0)


def test_the_controllers_sampled_cost_tracks_the_annealed_target():
    """Toy reward: accuracy grows with cost (the sum of the choice indices), so only the penalty above the
    target F holds the controller back; over the slow sweep its sampled cost must follow F."""
    torch.manual_seed(0)
    controller = Controller((5,) * 6)
    rl = Reinforce(controller, lr=0.01, baseline_decay=0.9, entropy_weight=1e-3)
    schedule = CostAnnealing(6.0, 22.0, warmup=0.1, slow=0.7)
    generator = torch.Generator().manual_seed(0)
    steps, targets, costs = 1000, [], []
    for t in range(steps):
        target = schedule.target(t / steps)
        with torch.no_grad():
            arch, _, _ = controller(generator)
        cost = sum(arch) + 1.0
        rl.update(arch, cost_reward(0.5 + 0.5 * cost / 25, cost, target, -2.0))
        targets.append(target)
        costs.append(cost)
    smooth = np.convolve(costs, np.ones(50) / 50, mode="same")
    lo, hi = int(0.15 * steps), int(0.8 * steps)
    assert np.corrcoef(targets[lo:hi], smooth[lo:hi])[0, 1] > 0.9
    assert smooth[int(0.75 * steps)] - smooth[int(0.2 * steps)] > 8  # it moved along with F (6 -> 22)


def test_a_canas_run_writes_its_samples_and_a_front(data_dir, tmp_path, capsys):
    from hwnas.cli import main
    from hwnas.evolve.front import Front
    from hwnas.evolve.plot import plot_front_2d

    run = tmp_path / "run"
    argv = ["train", "--mode", "canas", "--channels", "4", "--cells", "1", "--max-images", "256", "--epochs", "2",
            "--held-out-images", "64", "--data", str(data_dir), "--out", str(run), "--quiet"]
    assert main(argv) == 0
    assert "front of the 8 sampled paths" in capsys.readouterr().out  # 256 images / batch 64 x 2 epochs
    front = Front.load(run / "front.json")
    assert front.objectives == ["batch_err_pct", "cost_MFLOPs"] and front.table.is_pareto.any()
    assert plot_front_2d(front, "cost_MFLOPs", "batch_err_pct") is not None
    with pytest.raises(UsageError, match="--cost-exponent must be a negative number, got 0.5"):
        TrainConfig(mode="canas", cost_exponent=0.5).validate()
    with pytest.raises(UsageError, match="--size-limit-mb is an fbnet option; mode 'canas'"):
        TrainConfig(mode="canas", size_limit_mb=1.0).validate()
