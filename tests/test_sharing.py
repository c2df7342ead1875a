"""Weight sharing inside a layer (supernet.sharing): what is cut from where, that a member's gradient reaches only
its part of the shared tensors, that every member (with and without OFA's kernel transformation) computes what
its standalone block computes with the cut weights, and that a checkpoint of the old per-choice layout is refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.core.errors import UsageError
from hwnas.supernet.layerwise_net import ChoiceLayer, LayerwiseNetwork
from hwnas.supernet.sharing import SharedChoiceLayer, cut
from hwnas.supernet.spaces import get_space

SMALL = {"mobilenet": [[1.5, 1, 1], [2, 2, 2]], "shufflenet": [[4, 1, 1], [10, 2, 2]]}


def test_cut_takes_leading_channels_and_the_kernel_centre():
    full = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    part = cut(full, (1, 2, 3, 3))
    assert torch.equal(part, full[:1, :2, 1:4, 1:4])
    assert torch.equal(cut(torch.arange(6.0), (4,)), torch.arange(4.0))
    part.add_(1000)  # a view: an in-place change (a BN statistics update) reaches the full tensor
    assert full[0, 0, 2, 2] >= 1000 and full[0, 0, 0, 0] < 1000
    with pytest.raises(ValueError, match="cannot cut"):
        cut(full, (3, 3, 3, 3))


def test_mobilenet_layer_keeps_one_full_size_block():
    space = get_space("mobilenet", stages=SMALL["mobilenet"])
    net = space.build_supernet(channels=8)
    for layer, spec in zip(net.layers, net.specs):
        assert isinstance(layer, SharedChoiceLayer)
        assert list(layer.groups) == ["mbconv"]
        assert spec.choices[layer.groups["mbconv"].full_choice] == "k7e6"
        assert all(spec.choices[int(k)] == "skip" for k in layer.blocks)  # only skip outside the group
    depthwise = [p for n, p in net.named_parameters() if n.endswith("body.1.0.weight")]
    assert len(depthwise) == len(net.layers) and all(p.shape[-1] == 7 for p in depthwise)


def test_a_small_member_trains_only_its_part_of_the_shared_weights():
    torch.manual_seed(0)
    space = get_space("mobilenet", stages=[[1.5, 1, 1]])
    net = space.build_supernet(channels=8).train()
    choice = space.choices(0).index("k3e3")
    net(torch.randn(4, 3, 32, 32), (choice,)).sum().backward()
    group = net.layers[0].groups["mbconv"]
    hidden = space.layer_specs(8)[0].c_in * 3
    grad = group.full.body[1][0].weight.grad  # depthwise (hidden_max, 1, 7, 7)
    inside = torch.zeros_like(grad, dtype=torch.bool)
    inside[:hidden, :, 2:5, 2:5] = True
    assert grad[inside].abs().sum() > 0 and grad[~inside].abs().sum() == 0
    expand = group.full.body[0][0].weight.grad
    assert expand[:hidden].abs().sum() > 0 and expand[hidden:].abs().sum() == 0


@pytest.mark.parametrize("name,options", [("mobilenet", {}), ("mobilenet", {"kernel_transform": True}),
                                          ("mobilenet", {"hidden": [[8, 20], [12, 28, 36]], "hidden_channels": 8}),
                                          ("shufflenet", {})])
def test_every_member_equals_its_standalone_block_on_the_cut_weights(name, options):
    torch.manual_seed(0)
    space = get_space(name, stages=SMALL[name], **options)
    net = space.build_supernet(channels=8)
    with torch.no_grad():  # weights and BN statistics away from their initial values, transforms off identity
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for n, b in net.named_buffers():
            if "running" in n:
                b.copy_(torch.rand_like(b) + 0.5)
    if options.get("kernel_transform"):
        assert any("transforms" in n for n, _ in net.named_parameters())
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    rng = np.random.default_rng(0)
    for layer_index in range(len(net.layers)):
        for choice in range(space.num_choices[layer_index]):
            arch = list(space.sample(rng))
            arch[layer_index] = choice
            sub = space.build_subnet(tuple(arch), supernet=net).eval()
            with torch.no_grad():
                torch.testing.assert_close(sub(x), net(x, tuple(arch)), rtol=0, atol=1e-5)


def test_kernel_transform_changes_the_small_kernels_only():
    torch.manual_seed(0)
    space = get_space("mobilenet", stages=[[1.5, 1, 1]], kernel_transform=True)
    net = space.build_supernet(channels=8)
    layer = net.layers[0]
    k3 = space.choices(0).index("k3e6")
    k7 = space.choices(0).index("k7e6")
    before3, before7 = layer.block_state(k3), layer.block_state(k7)
    with torch.no_grad():
        for p in layer.groups["mbconv"].transforms.values():
            p.add_(0.1 * torch.randn_like(p))
    after3, after7 = layer.block_state(k3), layer.block_state(k7)
    assert not torch.equal(before3["body.1.0.weight"], after3["body.1.0.weight"])
    assert torch.equal(before7["body.1.0.weight"], after7["body.1.0.weight"])


def test_an_old_per_choice_checkpoint_is_refused_with_one_line():
    space = get_space("mobilenet", stages=[[1.5, 1, 1], [2, 1, 2]])
    new = space.build_supernet(channels=8)
    specs = space.layer_specs(8)
    old = LayerwiseNetwork(new.stem, specs, space.make_block, new.head, new.config)  # one block per choice
    assert all(isinstance(layer, ChoiceLayer) for layer in old.layers)
    with pytest.raises(UsageError, match="predates weight sharing"):
        new.load_state_dict(old.state_dict())
    new.load_state_dict(new.state_dict())  # its own layout loads


# ------------------------------------------------------------------------------- training for shared weights
def _mobilenet_small():
    return get_space("mobilenet", stages=SMALL["mobilenet"])


def test_largest_and_smallest_paths_of_a_layerwise_space():
    space = _mobilenet_small()
    assert set(space.to_str(space.largest_arch()).split("-")) == {"k7e6"}
    smallest = space.to_str(space.smallest_arch()).split("-")
    assert smallest == ["skip" if "skip" in space.choices(i) else "k3e3" for i in range(len(smallest))]


def test_a_sandwich_step_is_ce_on_the_largest_path_plus_distillation_of_the_others():
    import torch.nn.functional as F

    from hwnas.supernet.modes import SPOS
    from hwnas.supernet.modes.base import GRAD_CLIP

    space = _mobilenet_small()
    torch.manual_seed(0)
    net = space.build_supernet(channels=4).train()
    twin = space.build_supernet(channels=4).train()
    twin.load_state_dict(net.state_dict())
    mode = SPOS(net, space, torch.optim.SGD(net.parameters(), lr=0.1), seed=3, sampler="sandwich")
    archs = SPOS(twin, space, torch.optim.SGD(twin.parameters(), lr=0.1), seed=3, sampler="sandwich").sandwich_archs()
    assert archs[0] == space.largest_arch() and archs[1] == space.smallest_arch() and len(archs) == 4
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    mode.train_step(x, y)
    teacher = twin(x, archs[0])
    loss = F.cross_entropy(teacher, y)
    for arch in archs[1:]:
        p = F.softmax(teacher.detach(), dim=1)
        loss = loss - (p * F.log_softmax(twin(x, arch), dim=1)).sum(1).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(twin.parameters(), GRAD_CLIP)
    torch.optim.SGD(twin.parameters(), lr=0.1).step()
    for (name, a), b in zip(net.state_dict().items(), twin.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def test_progressive_shrinking_opens_kernel_then_depth_then_width():
    from hwnas.supernet.modes import SPOS

    space = _mobilenet_small()
    net = space.build_supernet(channels=4)
    mode = SPOS(net, space, torch.optim.SGD(net.parameters(), lr=0.1), schedule="progressive")
    expected = {"largest": {"k7e6"}, "kernel": {"k3e6", "k5e6", "k7e6"}, "depth": {"k3e6", "k5e6", "k7e6", "skip"},
                "width": {"k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6", "skip"}}
    for epoch, phase in enumerate(expected):
        mode.on_epoch_start(epoch, 4)
        assert mode.phase()[0] == phase
        drawn = {space.choices(i)[a] for _ in range(200) for i, a in enumerate(mode.sample_arch())}
        assert drawn == expected[phase]


def test_shufflenet_progressive_phases_bring_the_unshared_xception_last():
    from hwnas.supernet.modes import SPOS

    space = get_space("shufflenet", stages=SMALL["shufflenet"])
    net = space.build_supernet(channels=4)
    mode = SPOS(net, space, torch.optim.SGD(net.parameters(), lr=0.1), schedule="progressive")
    shared = {"shuffle3", "shuffle5", "shuffle7"}
    expected = {"largest": {"shuffle7"}, "kernel": shared, "depth": shared | {"skip"},
                "xception": shared | {"skip", "xception"}}
    for epoch, phase in enumerate(expected):
        mode.on_epoch_start(epoch, 4)
        assert mode.phase()[0] == phase
        drawn = {space.choices(i)[a] for _ in range(200) for i, a in enumerate(mode.sample_arch())}
        assert drawn == expected[phase]


def test_sandwich_and_progressive_train_and_their_errors(data_dir, tmp_path):
    from hwnas.supernet.trainer import TrainConfig, train

    cfg = dict(space="mobilenet", space_options={"stages": [[1.5, 1, 1], [2, 1, 2]]}, channels=4, max_images=128,
               batch_size=64, held_out_images=128, data=str(data_dir), progress=False)
    result = train(TrainConfig(sampler="sandwich", schedule="progressive", epochs=2, out=str(tmp_path / "s"), **cfg))
    assert 0 <= result["val_acc"] <= 100
    with pytest.raises(UsageError, match="sandwich sampler needs a space whose blocks have sizes"):
        TrainConfig(sampler="sandwich", channels=4, cells=1).validate()
    with pytest.raises(UsageError, match="progressive shrinking needs"):
        TrainConfig(space="resblock", schedule="progressive").validate()
    with pytest.raises(UsageError, match="unknown SPOS schedule 'slow'"):
        TrainConfig(schedule="slow").validate()


def test_a_kernel_3_choice_is_the_centre_of_the_shared_kernel():
    space = get_space("mobilenet", stages=[[1.5, 1, 1]])
    layer = space.build_supernet(channels=8).layers[0]
    k3, k5, k7 = (space.choices(0).index(f"k{k}e6") for k in (3, 5, 7))
    full = layer.groups["mbconv"].full.body[1][0].weight  # the shared 7x7 depthwise kernel
    name = "body.1.0.weight"

    def kernels():
        return [layer.block_state(c)[name].clone() for c in (k3, k5, k7)]

    before = kernels()
    with torch.no_grad():
        full[:, :, 3, 3] += 1.0  # the centre: every kernel size sees it
    centre = kernels()
    assert all(not torch.equal(a, b) for a, b in zip(before, centre))
    with torch.no_grad():
        full[:, :, 0, 0] += 1.0  # a 7x7 corner: only the 7x7 kernel sees it
    corner = kernels()
    assert torch.equal(centre[0], corner[0]) and torch.equal(centre[1], corner[1])
    assert not torch.equal(centre[2], corner[2])
    with torch.no_grad():
        full[:, :, 1, 1] += 1.0  # a 5x5 corner: the 5x5 and 7x7 kernels see it, the 3x3 does not
    inner = kernels()
    assert torch.equal(corner[0], inner[0]) and not torch.equal(corner[1], inner[1])


def test_a_full_depth_shared_supernet_learns_where_its_per_choice_predecessor_does_not(data_dir, tmp_path,
                                                                                        monkeypatch):
    """The full 20-layer mobilenet, a short CPU run: with sharing inside a layer the supernet's held-out
    accuracy (panel of random paths) beats the old layout's (one set of weights per block), built here by
    switching sharing off, under the same budget (150 steps of 32 images, C=4, lr 0.1). Measured on the 2-core
    CPU machine: shared 14.6%, per-choice 9.8% (chance 10%), a margin of 4.8 points; the test asks for 3."""
    from hwnas.supernet.spaces.mobilenet import MobileNetSpace
    from hwnas.supernet.trainer import TrainConfig, train

    cfg = dict(space="mobilenet", channels=4, max_images=2400, epochs=2, batch_size=32, lr=0.1, held_out_images=500,
               data=str(data_dir), progress=False)
    shared = train(TrainConfig(out=str(tmp_path / "shared"), **cfg))["val_acc"]
    monkeypatch.setattr(MobileNetSpace, "shared_group", lambda self, name: None)
    per_choice = train(TrainConfig(out=str(tmp_path / "per_choice"), **cfg))["val_acc"]
    print(f"held-out accuracy: shared {shared:.1f}%, per-choice {per_choice:.1f}%")
    assert shared > per_choice + 3.0, (shared, per_choice)
