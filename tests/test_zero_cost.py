"""Zero-cost signals against cases with a known answer, their determinism and caching, and their objectives."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from hwnas.supernet import zero_cost as zc
from hwnas.supernet.nb201_net import conv_depth, live_convs
from hwnas.supernet.spaces import get_space

SPACE = get_space("nb201")


def _two_layer(w1, w2) -> nn.Module:
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w1, dtype=torch.float32))
        net[2].weight.copy_(torch.tensor(w2, dtype=torch.float32))
    return net


def test_synflow_of_a_two_layer_net_by_hand():
    # |W1| = [[1, 2], [3, 4]], |W2| = [5, 6], x = (1, 1): hidden (3, 7), R = 5*3 + 6*7 = 57.
    # Layer 2: |w * dR/dw| = 5*3 + 6*7 = 57; layer 1: sum_ij |W1_ij| |W2_i| x_j = 5*(1+2) + 6*(3+4) = 57.
    net = _two_layer([[1.0, -2.0], [3.0, 4.0]], [[5.0, -6.0]])
    batch = (torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    assert zc.synflow(net, [batch]) == pytest.approx(114.0)
    assert net[0].weight[0, 1].item() == -2.0  # the network itself is left as it was


def test_synflow_counts_relu6_as_relu():
    # hidden (30, 70) would saturate a ReLU6 and stop every gradient below it; as ReLU: 2 x (5*30 + 6*70)
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU6(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[10.0, 20.0], [30.0, 40.0]]))
        net[2].weight.copy_(torch.tensor([[5.0, 6.0]]))
    assert zc.synflow(net, [(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))]) == pytest.approx(1140.0)
    assert isinstance(net[1], nn.ReLU6)  # the network itself keeps its ReLU6


def test_synflow_ignores_batchnorm():
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.BatchNorm1d(2), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        net[2].weight.copy_(torch.tensor([[5.0, 6.0]]))
    assert zc.synflow(net, [(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))]) == pytest.approx(114.0)


def test_naswot_of_identical_and_of_distinct_codes():
    same = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    assert zc.naswot_from_codes(same) == -math.inf  # identical activation codes: K is singular
    # codes agree on 1 unit of 3: K = [[3, 1], [1, 3]], det 8
    assert zc.naswot_from_codes(torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])) == pytest.approx(math.log(8))
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    x = torch.randn(1, 2).repeat(4, 1)  # four identical images
    assert zc.naswot(net, [(x, torch.zeros(4, dtype=torch.long))]) == -math.inf


def test_jacob_cov_of_uncorrelated_and_of_identical_jacobians():
    k = 1e-5
    eye = torch.eye(4) - 0.25  # zero-mean rows with correlation -1/3 between each pair
    uncorrelated = torch.cat([torch.eye(4), -torch.eye(4)], dim=1)  # zero-mean rows, pairwise correlation 0
    assert zc.jacob_cov_from_jacobians(uncorrelated) == pytest.approx(-4 * (math.log(1 + k) + 1 / (1 + k)))
    same = torch.tensor([[1.0, 2.0, 3.0, 0.0]]).repeat(3, 1)  # correlation all ones: eigenvalues 3, 0, 0
    expected = -((math.log(3 + k) + 1 / (3 + k)) + 2 * (math.log(k) + 1 / k))
    assert zc.jacob_cov_from_jacobians(same) == pytest.approx(expected, rel=1e-6)
    assert zc.jacob_cov_from_jacobians(eye) > zc.jacob_cov_from_jacobians(same)


def test_grad_norm_and_snip_of_a_linear_classifier_by_hand():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2, bias=False))
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    w = net[0].weight.detach().numpy().astype(np.float64)
    logits = x.numpy() @ w.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    grad = (p - np.eye(2)[y.numpy()]).T @ x.numpy() / len(y)  # d mean CE / dW
    assert zc.grad_norm(net, [(x, y)]) == pytest.approx(np.linalg.norm(grad), rel=1e-5)
    assert zc.snip(net, [(x, y)]) == pytest.approx(np.abs(w * grad).sum(), rel=1e-5)


def test_zico_by_hand():
    # one layer, two weights over two batches: g = [1, 2] then [3, 2]; weight 1: mean|g| 2, std 1; weight 2 has
    # std 0 and is left out: log(2)
    grads = [[torch.tensor([1.0, 2.0])], [torch.tensor([3.0, 2.0])]]
    assert zc.zico_from_grads(grads) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="at least 2 batches"):
        zc.zico_from_grads(grads[:1])


def test_live_params_counts_only_the_ops_that_run():
    dead = SPACE.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")  # conv on a dead edge
    alive = SPACE.from_str("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    batch = [(torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.long))]
    net_dead = SPACE.build_subnet(dead, channels=4, cells=1, num_classes=10)
    net_alive = SPACE.build_subnet(alive, channels=4, cells=1, num_classes=10)
    total = sum(p.numel() for p in net_dead.parameters()) / 1e6
    assert zc.live_params(net_dead, batch) < total  # the dead 3x3 conv is not counted
    assert zc.live_params(net_alive, batch) == pytest.approx(sum(p.numel() for p in net_alive.parameters()) / 1e6)


def test_cell_graph_features():
    full = SPACE.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert (live_convs(full), conv_depth(full)) == (6, 3)
    dead = SPACE.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert (live_convs(dead), conv_depth(dead)) == (0, 0)
    mixed = SPACE.from_str("|nor_conv_1x1~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|nor_conv_3x3~1|skip_connect~2|")
    assert (live_convs(mixed), conv_depth(mixed)) == (2, 2)


@pytest.fixture
def batches():
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(2)]


@pytest.mark.parametrize("signal", list(zc.SIGNALS))
def test_every_signal_scores_a_cell_without_a_path_from_input_to_output(signal, batches):
    empty = SPACE.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")  # the output ignores the input
    torch.manual_seed(0)
    model = SPACE.build_subnet(empty, channels=4, cells=1, num_classes=10)
    score = zc.SIGNALS[signal][0](model, batches)
    assert not math.isnan(score)
    if signal == "jacob_cov":  # every Jacobian is zero: the correlation matrix is 0, every eigenvalue 0
        k, n = 1e-5, len(batches[0][1])
        assert score == pytest.approx(-n * (math.log(k) + 1 / k))


@pytest.mark.parametrize("signal", list(zc.SIGNALS))
def test_every_signal_is_deterministic_and_cached_per_canonical_arch(signal, batches, tmp_path):
    settings = zc.ZeroCostSettings(zc_channels=4, zc_cells=1, zc_batch_size=8, zc_batches=2)
    arch = SPACE.from_str("|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|")
    twin = SPACE.canonical(arch)
    first = zc.ZeroCostScorer(signal, SPACE, batches, 10, settings, cache=tmp_path / "zc.sqlite", progress=False)
    a = first([arch, twin])
    assert np.isfinite(a).all() and a[0] == a[1] and first.misses == 1 and first.hits == 1
    again = zc.ZeroCostScorer(signal, SPACE, batches, 10, settings, cache=tmp_path / "other.sqlite", progress=False)
    assert again([arch])[0] == a[0]  # recomputed from scratch: the same number
    cached = zc.ZeroCostScorer(signal, SPACE, batches, 10, settings, cache=tmp_path / "zc.sqlite", progress=False)
    assert cached([arch])[0] == a[0] and cached.misses == 0
    state = torch.get_rng_state()
    zc.ZeroCostScorer(signal, SPACE, batches, 10, settings, cache=tmp_path / "third.sqlite", progress=False)([arch])
    assert torch.equal(torch.get_rng_state(), state)  # the seeded scoring leaves the global RNG alone


def test_zero_cost_objectives_are_maximised_and_searchable(data_dir, tmp_path):
    import hwnas

    sources = hwnas.Sources(progress=False, zero_cost_cache=str(tmp_path / "zc.sqlite"),
                            zero_cost=zc.ZeroCostSettings(zc_channels=4, zc_cells=1, zc_batch_size=16))
    names = hwnas.list_objectives(sources, "zc:*")
    assert names == [f"zc:{s}" for s in (*zc.SIGNALS, "live_convs", "conv_depth")]
    obj = hwnas.get_objective("zc:snip", sources)
    assert obj.direction is hwnas.Direction.MAXIMISE and obj.column == "zc_snip"
    front = hwnas.search("nb201", ["zc:live_convs", "fpga_latency"], sources=sources, pop_size=10, generations=3,
                         progress=False)
    assert front.directions["zc_live_convs"] == "max"
    assert front.pareto().zc_live_convs.max() == front.table.zc_live_convs.max()
    with pytest.raises(ValueError, match="unknown zero-cost signal 'synflo'; valid: synflow"):
        hwnas.get_objective("zc:synflo", sources)
    with pytest.raises(ValueError, match="feature of NB201 cells"):
        hwnas.get_objective("zc:conv_depth", hwnas.Sources(space="resblock", progress=False))


def test_a_signal_that_needs_two_batches_refuses_one(batches):
    with pytest.raises(ValueError, match="signal 'zico' needs 2 batches, got 1"):
        zc.ZeroCostScorer("zico", SPACE, batches[:1], 10, progress=False)


def test_percentiles_by_hand():
    from hwnas.evolve.objectives.ensemble import percentiles

    got = percentiles(np.array([0.0, 2.0, 5.0, np.nan]), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(got[:3], [0.5 / 4, 2 / 4, 3.5 / 4])
    assert np.isnan(got[3])


def test_an_archs_ensemble_score_does_not_depend_on_what_else_is_evaluated():
    import hwnas
    from hwnas.evolve.objectives.ensemble import percentiles

    sources = hwnas.Sources(progress=False)
    name = "ensemble:zc:live_convs+zc:conv_depth"
    a = SPACE.from_str("|nor_conv_1x1~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|nor_conv_3x3~1|skip_connect~2|")
    others = [SPACE.from_index(i) for i in (5, 600, 9000, 15000)]
    alone = hwnas.get_objective(name, sources)([a])[0]
    crowd = hwnas.get_objective(name, hwnas.Sources(progress=False))([*others, a])[-1]
    assert alone == crowd
    ref = sources.reference_archs
    assert len(ref) == 128 and ref == hwnas.Sources(progress=False).reference_archs  # a fixed sample
    by_hand = (np.log(percentiles(np.array([live_convs(a)]), np.array([live_convs(r) for r in ref])))
               + np.log(percentiles(np.array([conv_depth(a)]), np.array([conv_depth(r) for r in ref]))))
    assert alone == pytest.approx(by_hand[0])
    obj = hwnas.get_objective(name, sources)
    assert obj.direction is hwnas.Direction.MAXIMISE and obj.cost == hwnas.Cost.COUNTER
    with pytest.raises(ValueError, match="names a member twice"):
        hwnas.get_objective("ensemble:zc:snip+zc:snip", sources)
