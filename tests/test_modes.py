"""Training modes: each learns something on real CIFAR-10 in a tiny run, GDAS runs one op per edge,
DARTS' second order differs from its first, GDAS' temperature schedule, and what DARTS/GDAS report.

Tiny configs (C=8, N=1); the beats-chance runs read $HWNAS_DATA (skipped when it is missing).
"""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from hwnas.supernet.bn import batch_statistics
from hwnas.supernet.checkpoint import load_checkpoint
from hwnas.supernet.modes import DARTS, GDAS, get_mode, list_modes
from hwnas.supernet.nb201_net import Cell, Edge
from hwnas.supernet.ops import NB201_OPS
from hwnas.supernet.spaces import get_space
from hwnas.supernet.trainer import TrainConfig, build_run, load_supernet, train

NONE, SKIP, CONV1, CONV3, POOL = range(5)



@pytest.fixture()
def space():
    return get_space("nb201")


def _mode(name: str, space, seed: int = 0, **options):
    torch.manual_seed(seed)
    model = space.build_supernet(channels=8, cells=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4)
    return get_mode(name)(model, space, opt, seed=seed, **options)


# ---------------------------------------------------------------------------------------------
# each mode learns

# 2,000 train + 2,000 held-out images, 2 epochs, batch 64. Held-out accuracy (%) measured on this machine
# (2 cores, 1 thread) for seeds 0/1/2:
#   spos  val_acc (mean of its 4-arch panel)          22.1 / 18.6 / 18.1    ~10 s
#   gdas  val_acc (derived arch)                      23.7 / 17.4 / 16.3    ~12 s
#   darts val_acc (derived arch)                      23.9 / 15.7 /  7.8    ~35 s
#   darts mixture softmax(alpha) (what DARTS trains)  27.2 / 26.4 / 28.1
# DARTS' derived arch is not a measure of what a run this short learned: alpha moves ~0.02 from uniform
# in 62 arch steps, so its argmax is a near-random single path on weights trained as a mixture (the
# discretisation gap); seed 2 derives a cell that is one 1x1 conv and scores below chance. (A 10x-300x
# larger arch_lr or 3,000 images did not fix seed 2: 10.5-12.9%.) So for DARTS we hold the mixture it
# trains to the bar, and only check that val_acc is a percentage.
BEATS_CHANCE = dict(max_images=2000, epochs=2)
THRESHOLD = 14.0  # chance is 10%; the worst seed above is 16.3% and 2,000 images put chance's std at 0.7%


def _mixture_held_out_accuracy(run: str, cfg: TrainConfig) -> float:
    _, model, _ = load_supernet(run)
    weights = torch.softmax(load_checkpoint(f"{run}/supernet.pt")["mode"]["alpha"], dim=1)
    held_out = build_run(cfg)[5]["held_out"]
    correct = total = 0
    with torch.no_grad(), batch_statistics(model):
        for x, y in held_out:
            correct += (model(x, weights=weights).argmax(1) == y).sum().item()
            total += len(y)
    return 100.0 * correct / total


@pytest.mark.parametrize("mode", ["spos", "darts", "gdas"])
def test_each_mode_beats_chance(mode, data_dir, tmp_path):
    out = tmp_path / mode
    cfg = TrainConfig(mode=mode, channels=8, cells=1, batch_size=64, out=str(out), data=str(data_dir),
                      progress=False, **BEATS_CHANCE)
    result = train(cfg)
    assert 0.0 <= result["val_acc"] <= 100.0
    if mode == "darts":
        acc = _mixture_held_out_accuracy(str(out), cfg)
        import csv

        logged = list(csv.DictReader(open(out / "metrics.csv")))[-1]["mixture_acc"]
        assert float(logged) == pytest.approx(acc)  # the trainer logs the same mixture accuracy
    else:
        acc = result["val_acc"]
    assert acc > THRESHOLD, f"{mode}: held-out accuracy {acc:.1f}% is not clearly above chance"


# ---------------------------------------------------------------------------------------------
# GDAS


def _hook_ops(model) -> Counter:
    calls: Counter = Counter()
    for li, layer in enumerate(model.layers):
        if isinstance(layer, Cell):
            for e, edge in enumerate(layer.edges):
                assert isinstance(edge, Edge)
                for name, op in edge.ops.items():
                    op.register_forward_hook(lambda m, i, o, key=(li, e, name): calls.update([key]))
    return calls


def test_gdas_runs_exactly_one_op_per_edge(space):
    mode = _mode("gdas", space)
    mode.on_epoch_start(0, 10)
    model = mode.model
    cells = [i for i, layer in enumerate(model.layers) if isinstance(layer, Cell)]
    calls = _hook_ops(model)
    x = torch.randn(4, 3, 32, 32)
    samples = [mode.sample() for _ in range(4)]
    with torch.no_grad():  # force `none` on edges 0, 2, 4 and a known op elsewhere
        mode.alpha.zero_()
        for e, op in enumerate((NONE, CONV3, NONE, SKIP, NONE, POOL)):
            mode.alpha[e, op] = 100.0
    forced = mode.sample()
    assert forced[1] == [NONE, CONV3, NONE, SKIP, NONE, POOL]
    samples.append(forced)
    for hard, index in samples:
        assert hard.shape == (6, 5) and len(index) == 6
        calls.clear()
        model(x, hard=(hard, index))
        expected = Counter({(c, e, NB201_OPS[k]): 1 for c in cells for e, k in enumerate(index) if k != NONE})
        assert calls == expected
        per_edge = Counter((c, e) for c, e, _ in calls.elements())
        assert all(n == 1 for n in per_edge.values())


def test_gdas_sample_is_one_hot_with_a_straight_through_gradient(space):
    mode = _mode("gdas", space)
    hard, index = mode.sample()
    assert torch.equal(hard.detach().argmax(1), torch.tensor(index))
    one_hot = torch.nn.functional.one_hot(torch.tensor(index), 5).float()
    assert torch.allclose(hard.detach(), one_hot, atol=1e-6)
    (hard * torch.randn(6, 5)).sum().backward()
    assert mode.alpha.grad is not None and mode.alpha.grad.abs().sum() > 0


def test_gdas_temperature_anneals_from_10_to_0_1(space):
    mode = _mode("gdas", space)
    epochs = 5
    taus = []
    for epoch in range(epochs):
        mode.on_epoch_start(epoch, epochs)
        taus.append(mode.tau)
    assert taus[0] == pytest.approx(10.0)
    assert taus[-1] == pytest.approx(0.1)
    steps = [a - b for a, b in zip(taus, taus[1:])]
    assert steps == pytest.approx([(10.0 - 0.1) / (epochs - 1)] * (epochs - 1))  # linear, decreasing
    assert mode.summary()["tau"] == pytest.approx(0.1)
    mode.on_epoch_start(0, 1)
    assert mode.tau == pytest.approx(10.0)  # a one-epoch run stays at the start temperature


# ---------------------------------------------------------------------------------------------
# DARTS


def test_darts_second_order_changes_alpha_differently_from_first_order(space):
    first = _mode("darts", space, order=1)
    second = _mode("darts", space, order=2)  # same seed: identical model copy and alpha
    for (k, v), (k2, v2) in zip(first.model.state_dict().items(), second.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    start = first.alpha.detach().clone()
    assert torch.equal(second.alpha.detach(), start)

    g = torch.Generator().manual_seed(1)
    train_batch, val_batch = [(torch.randn(16, 3, 32, 32, generator=g),
                               torch.randint(0, 10, (16,), generator=g)) for _ in range(2)]
    first.arch_step(train_batch, val_batch)
    second.arch_step(train_batch, val_batch)

    assert not torch.equal(first.alpha.detach(), start)
    assert not torch.equal(second.alpha.detach(), start)
    assert not torch.equal(first.alpha.detach(), second.alpha.detach())
    # The gradients (kept on alpha after the step) differ by the Hessian term, not by rounding.
    assert (first.alpha.grad - second.alpha.grad).abs().max() > 1e-3 * first.alpha.grad.abs().max()
    # The second order restores the weights it perturbed.
    for p, q in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(p, q)


def test_darts_order_must_be_1_or_2(space):
    with pytest.raises(ValueError, match="DARTS order 3 is not valid; valid: 1, 2"):
        _mode("darts", space, order=3)


# ---------------------------------------------------------------------------------------------
# what DARTS and GDAS report


@pytest.mark.parametrize("name", ["darts", "gdas"])
def test_darts_and_gdas_report_derived_arch_and_skip_fraction(space, name):
    mode = _mode(name, space)
    with torch.no_grad():
        mode.alpha.zero_()
        for e, op in enumerate((CONV3, CONV1, SKIP, SKIP, POOL, CONV3)):
            mode.alpha[e, op] = 1.0
    summary = mode.summary()
    assert {"derived_arch", "skip_fraction", "alpha_softmax"} <= set(summary)
    assert ("tau" in summary) == (name == "gdas")
    assert space.from_str(summary["derived_arch"]) == (CONV3, CONV1, SKIP, SKIP, POOL, CONV3)
    assert summary["skip_fraction"] == pytest.approx(2 / 6)
    assert "warning" not in summary
    soft = torch.tensor(summary["alpha_softmax"])
    assert soft.shape == (6, 5) and torch.allclose(soft.sum(1), torch.ones(6))
    assert mode.eval_archs() == [(CONV3, CONV1, SKIP, SKIP, POOL, CONV3)]

    with torch.no_grad():  # collapse: half the edges prefer skip_connect
        mode.alpha[0, SKIP] = 5.0
    summary = mode.summary()
    assert summary["skip_fraction"] == pytest.approx(3 / 6)
    assert "identity" in summary["warning"] and "50%" in summary["warning"]

    with torch.no_grad():  # collapse onto the zero op counts too: an all-`none` cell computes nothing
        mode.alpha.zero_()
        mode.alpha[:, 0] = 1.0
    summary = mode.summary()
    assert summary["skip_fraction"] == 0 and summary["zero_fraction"] == 1
    assert "zero ops" in summary["warning"] and "100%" in summary["warning"]


def test_mode_registry_lists_valid_names():
    assert list_modes() == ["spos", "darts", "gdas", "fbnet", "enas", "canas", "htas"]
    assert get_mode("darts") is DARTS and get_mode("gdas") is GDAS
    with pytest.raises(ValueError, match="unknown mode 'nasnet'; valid: spos, darts, gdas, fbnet, enas, canas, htas"):
        get_mode("nasnet")


class _PairSpace:
    """Two decisions of three choices whose order does not matter: 9 strings, 6 classes of 1 or 2 strings."""

    name = "pairs"
    num_choices = (3, 3)

    def canonical(self, arch):
        return tuple(sorted(arch))

    def canonical_archs(self):
        return sorted({self.canonical((a, b)) for a in range(3) for b in range(3)})


def _sampler(sampler, space=None):
    import torch.nn as nn

    from hwnas.supernet.modes import SPOS

    model = nn.Linear(2, 2)
    return SPOS(model, space or _PairSpace(), torch.optim.SGD(model.parameters(), lr=0.1), seed=0, sampler=sampler)


def test_the_canonical_sampler_draws_uniformly_over_classes():
    from collections import Counter

    from scipy.stats import chisquare

    space = _PairSpace()
    draws = 6000
    sampler = _sampler("canonical")
    canonical = Counter(space.canonical(sampler.sample_arch()) for _ in range(draws))
    assert set(canonical) == set(space.canonical_archs())
    assert chisquare(list(canonical.values())).pvalue > 0.001  # uniform over the 6 classes
    uniform = _sampler("uniform")
    strings = Counter(space.canonical(uniform.sample_arch()) for _ in range(draws))
    assert chisquare([strings[c] for c in space.canonical_archs()]).pvalue < 1e-6  # strings: classes 1:2


def test_the_fair_sampler_trains_every_choice_of_every_decision_once_per_step():
    from hwnas.supernet.spaces import get_space

    mode = _sampler("fair", get_space("nb201"))
    for _ in range(3):
        paths = mode.fair_archs()
        assert len(paths) == 5
        for decision in range(6):
            assert sorted(p[decision] for p in paths) == [0, 1, 2, 3, 4]
    layerwise = _sampler("fair", get_space("resblock", stages=[[1, 1, 1], [2, 1, 2]]))
    paths = layerwise.fair_archs()
    assert all(sorted(set(p[d] for p in paths)) == list(range(n)) for d, n in enumerate(layerwise.space.num_choices))


def test_a_fair_spos_step_accumulates_one_update_over_its_paths(data_dir, tmp_path):
    from hwnas.supernet.trainer import TrainConfig, train

    cfg = dict(channels=4, cells=1, max_images=128, epochs=1, batch_size=64, data=str(data_dir), progress=False)
    result = train(TrainConfig(sampler="fair", out=str(tmp_path / "fair"), **cfg))
    assert result["mode"] == "spos" and 0 <= result["val_acc"] <= 100
    with pytest.raises(ValueError, match="--sampler canonical is an SPOS option"):
        TrainConfig(mode="darts", sampler="canonical", **cfg).validate()
    with pytest.raises(ValueError, match="unknown SPOS sampler 'round'"):
        TrainConfig(sampler="round", **cfg).validate()
