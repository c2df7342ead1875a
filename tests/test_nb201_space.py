"""The NAS-Bench-201 space: index/encoding/string round trips, canonical classes against NATS-Bench,
one-line errors for bad strings, subnets equal to their supernet path, and no compute for `none` or dead
edges.

The index check reads $HWNAS_DATA/nb201_accuracy.csv; the canonical-class check reads NATS-Bench's
`UniqueString` column from $HWNAS_SHARED or ../shared/data beside the repository (skipped when absent).
"""
from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
import torch

from hwnas.supernet.nb201_net import EDGES, Cell, Edge, live_edges
from hwnas.supernet.ops import NB201_OPS
from hwnas.supernet.spaces import get_space
from hwnas.supernet.spaces.nb201 import NUM_ARCHS, unique_str

NONE, SKIP, CONV1, CONV3, POOL = range(5)  # NB201_OPS order
ALL_NONE = (NONE,) * 6


@pytest.fixture(scope="module")
def space():
    return get_space("nb201")


# ---------------------------------------------------------------------------------------------
# encodings, index, strings


def test_every_arch_round_trips_through_index_encoding_and_string(space):
    assert space.size == NUM_ARCHS == 15625
    seen = set()
    for i in range(NUM_ARCHS):
        arch = space.from_index(i)
        assert space.decode(space.encode(arch)) == arch
        text = space.to_str(arch)
        assert space.from_str(text) == arch
        assert space.index(space.from_str(text)) == i
        seen.add(arch)
    assert len(seen) == NUM_ARCHS
    assert space.all_archs() == [space.from_index(i) for i in range(NUM_ARCHS)]


def test_benchmark_table_row_i_parses_to_index_i_and_prints_back_identically(space, data_dir):
    path = data_dir / "nb201_accuracy.csv"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == NUM_ARCHS
    for i, row in enumerate(rows):
        assert int(row["arch_index"]) == i
        arch = space.from_str(row["arch_str"])
        assert space.index(arch) == i
        assert space.to_str(arch) == row["arch_str"]


def test_decode_rounds_floats_and_rejects_out_of_range(space):
    assert space.decode(np.array([0.2, 1.4, 2.6, 3.0, 3.9, 0.0])) == (0, 1, 3, 3, 4, 0)
    with pytest.raises(ValueError, match="decision 2 is 5; valid: 0..4"):
        space.validate((0, 0, 5, 0, 0, 0))
    with pytest.raises(ValueError, match="has 5 decisions"):
        space.validate((0, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="out of range; valid: 0..15624"):
        space.from_index(15625)


# ---------------------------------------------------------------------------------------------
# canonical classes


def test_canonical_count_is_6466(space):
    classes = {space.canonical(a) for a in space.all_archs()}
    assert len(classes) == 6466
    assert space.canonical_archs() == sorted(classes)


def test_dropping_zero_terms_would_give_5390(space):
    assert len({unique_str(a, drop_zero_terms=True) for a in space.all_archs()}) == 5390


def test_canonical_is_idempotent_and_the_smallest_member(space):
    archs = space.all_archs()
    members: dict[tuple, list[tuple]] = {}
    for a in archs:
        c = space.canonical(a)
        assert space.canonical(c) == c
        members.setdefault(c, []).append(a)
    for c, group in members.items():
        assert c == min(group)  # tuples of base-5 digits order like their codes
        assert len({unique_str(a) for a in group}) == 1


def test_isomorphic_cells_share_a_canonical_form(space):
    # Addition commutes: with 0->1 a skip, node 1 equals the input, so swapping the ops on 0->3 and 1->3
    # gives node 3 = conv1x1(x) + conv3x3(x) both ways.
    a = (SKIP, NONE, NONE, CONV1, CONV3, NONE)
    b = (SKIP, NONE, NONE, CONV3, CONV1, NONE)
    assert a != b and space.canonical(a) == space.canonical(b)
    # With 0->1 `none`, node 1 is zero: the ops on 1->2 and 1->3 (fed only by it) cannot matter.
    c = (NONE, CONV1, CONV3, CONV1, POOL, CONV3)
    d = (NONE, CONV1, SKIP, CONV1, CONV1, CONV3)
    assert space.canonical(c) == space.canonical(d) == (NONE, CONV1, NONE, CONV1, NONE, CONV3)
    # ... but a different op on a live edge is a different cell.
    e = (SKIP, NONE, NONE, CONV1, CONV1, NONE)
    assert space.canonical(e) != space.canonical(a)
    # Every cell whose output node gets no signal computes zero, whatever its other edges hold.
    assert space.canonical((SKIP, CONV3, POOL, NONE, NONE, NONE)) == space.canonical(ALL_NONE) == ALL_NONE
    # NB201 keeps zero terms: conv1x1(x) and conv1x1(x + 0) are different cells (they merge only when
    # zero terms are dropped).
    f = (SKIP, NONE, NONE, CONV1, NONE, NONE)  # node 3 = conv1x1(x)
    g = (SKIP, NONE, SKIP, NONE, NONE, CONV1)  # node 2 = 0 + x, node 3 = conv1x1(node 2)
    assert space.canonical(f) != space.canonical(g)
    assert unique_str(f, drop_zero_terms=True) == unique_str(g, drop_zero_terms=True)


def test_canonical_classes_agree_one_to_one_with_nats_bench_unique_strings(space, shared_data):
    path = shared_data / "nb201" / "nats_bench_tss_test_acc_200ep.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == NUM_ARCHS
    canon_to_unique: dict[tuple, str] = {}
    unique_to_canon: dict[str, tuple] = {}
    for row in rows:
        c = space.canonical(space.from_str(row["ArchitectureString"]))
        u = row["UniqueString"]
        assert canon_to_unique.setdefault(c, u) == u
        assert unique_to_canon.setdefault(u, c) == c
    assert len(canon_to_unique) == len(unique_to_canon) == 6466


# ---------------------------------------------------------------------------------------------
# bad strings


GOOD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def _one_line_error(text: str, space) -> str:
    with pytest.raises(ValueError) as info:
        space.from_str(text)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_unknown_op_is_a_one_line_error_naming_it_and_the_valid_ones(space):
    msg = _one_line_error(GOOD.replace("avg_pool_3x3", "conv_5x5"), space)
    assert "conv_5x5" in msg
    for op in NB201_OPS:
        assert op in msg


@pytest.mark.parametrize("text", [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|",                              # 2 nodes
    GOOD + "+|none~0|none~1|none~2|none~3|",                                          # 4 nodes
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",  # node 2 has 1 input
    GOOD.replace("avg_pool_3x3~1", "avg_pool_3x3~0"),                                  # wrong source node
    GOOD.replace("|+|", "+", 1),                                                       # missing bar
    "",
])
def test_malformed_string_is_a_one_line_error(space, text):
    msg = _one_line_error(text, space)
    assert "expected 3 nodes" in msg


def test_surrounding_whitespace_is_ignored(space):
    assert space.from_str(f"  {GOOD}\n") == space.from_str(GOOD)


# ---------------------------------------------------------------------------------------------
# the network: subnet = supernet path, nothing computed for none or dead edges


def _test_archs(space, n_random: int = 24) -> list[tuple]:
    rng = np.random.default_rng(7)
    special = [
        ALL_NONE,
        (CONV3, CONV3, CONV3, NONE, NONE, NONE),   # output node has no input: the cell outputs zeros
        (NONE, CONV3, CONV1, CONV1, POOL, CONV3),  # node 1 is zero: 1->2 and 1->3 are dead
        (CONV3, CONV3, CONV1, SKIP, NONE, NONE),   # nodes 1, 2 never reach the output: only 0->3 is live
        (SKIP, SKIP, SKIP, SKIP, SKIP, SKIP),
        (CONV3,) * 6,
    ]
    return special + [space.sample(rng) for _ in range(n_random)]


def _warmed_supernet(space, channels: int, cells: int):
    """A supernet whose BN running statistics and affine parameters are far from their defaults."""
    torch.manual_seed(0)
    net = space.build_supernet(channels=channels, cells=cells)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 1:  # BN affine weights/biases and the classifier bias
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.normal_(0, 0.2)
    net.train()
    rng = np.random.default_rng(1)
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(8, 3, 32, 32) * 2 + 0.5, space.sample(rng))
        net(torch.randn(8, 3, 32, 32), weights=torch.softmax(torch.randn(6, 5), dim=1))
    return net.eval()


@pytest.mark.parametrize("cells", [1, 2])
def test_subnet_matches_supernet_path(space, cells):
    torch.set_num_threads(1)
    net = _warmed_supernet(space, channels=8, cells=cells)
    x = torch.randn(4, 3, 32, 32)
    archs = _test_archs(space)
    assert any(len(live_edges(a)) < sum(o != NONE for o in a) for a in archs)  # dead edges are covered
    with torch.no_grad():
        for arch in archs:
            sub = space.build_subnet(arch, supernet=net).eval()
            assert set(sub.state_dict()) <= set(net.state_dict())
            kept = {k.split(".ops.")[1].split(".")[0] for k in sub.state_dict() if ".ops." in k}
            assert kept <= {NB201_OPS[a] for a in arch if a != NONE}
            want = net(x, arch)
            got = sub(x)
            diff = (want - got).abs().max().item()
            assert diff <= 1e-5, f"{space.to_str(arch)}: max |supernet - subnet| = {diff}"


def _count_op_calls(net) -> Counter:
    calls: Counter = Counter()
    for name, module in net.named_modules():
        if isinstance(module, Edge):
            # name: layers.<layer>.edges.<e>
            parts = name.split(".")
            layer, e = int(parts[1]), int(parts[3])
            for op_name, op in module.ops.items():
                op.register_forward_hook(lambda m, i, o, key=(layer, e, op_name): calls.update([key]))
    return calls


def test_no_compute_for_none_or_dead_edges(space):
    torch.set_num_threads(1)
    net = space.build_supernet(channels=8, cells=1).eval()
    calls = _count_op_calls(net)
    cell_layers = [i for i, layer in enumerate(net.layers) if isinstance(layer, Cell)]
    assert len(cell_layers) == 3
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for arch in _test_archs(space, n_random=30):
            calls.clear()
            out = net(x, arch)
            assert out.shape == (2, 10)
            expected = Counter({(layer, e, NB201_OPS[arch[e]]): 1
                                for layer in cell_layers for e in live_edges(arch)})
            assert calls == expected, space.to_str(arch)
        calls.clear()
        net(x, ALL_NONE)
        assert not calls


def test_live_edges_of_known_cells():
    assert live_edges(ALL_NONE) == []
    assert live_edges((CONV3, CONV3, CONV3, NONE, NONE, NONE)) == []
    assert live_edges((NONE, CONV3, CONV1, CONV1, POOL, CONV3)) == [1, 3, 5]
    assert live_edges((CONV3, CONV3, CONV1, SKIP, NONE, NONE)) == [3]
    assert live_edges((SKIP,) * 6) == list(range(len(EDGES)))


@pytest.mark.parametrize("shape", [(3, 4, 8, 8), (2, 16, 32, 32), (1, 8, 1, 5)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_avg_pool_3x3_is_torchs_pooling_without_padded_positions(shape, channels_last):
    from hwnas.supernet.ops import AvgPool3x3

    x = torch.randn(*shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    want = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)(x)
    assert torch.allclose(AvgPool3x3()(x), want, atol=1e-6)
    x = x.clone().requires_grad_(True)
    AvgPool3x3()(x).sum().backward()
    if shape[2] >= 3 and shape[3] >= 3:  # a corner pixel is in 4 windows, of 4, 6, 6 and 9 positions
        assert x.grad[0, 0, 0, 0].item() == pytest.approx(1 / 4 + 2 / 6 + 1 / 9)


def test_pooling_counts_no_flops_and_folded_bn_scores_the_same(space):
    from hwnas.hardware.counters import flops_m
    from hwnas.supernet.bn import fold_batchnorm

    pool = space.from_str("|avg_pool_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    torchs = space.build_subnet(pool, channels=8, cells=1)
    for parent in list(torchs.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__ == "AvgPool3x3":
                setattr(parent, name, torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False))
    ours = space.build_subnet(pool, channels=8, cells=1)
    assert flops_m(ours) == flops_m(torchs) > 0  # torch's counter counts no FLOPs for pooling

    torch.manual_seed(0)
    net = space.build_subnet(space.from_str(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
        channels=8, cells=1)
    net.train()
    with torch.no_grad():
        for _ in range(3):  # running statistics away from their initial values
            net(torch.randn(16, 3, 32, 32))
    net.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        want = net(x)
        convs_with_bn = 1 + 4 * 3 + 2 * 2  # stem; 4 conv edges per cell x 3 stages (1 cell each); 2 per reduction
        assert fold_batchnorm(net) == convs_with_bn
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.layers.modules())
        assert torch.allclose(net(x), want, atol=1e-4)
