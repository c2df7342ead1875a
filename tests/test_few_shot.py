"""Few-shot NAS: routing to the sub-supernet of the split decision's choice, training that fine-tunes each part
only on its own paths, exact resume across the split, and one-line errors."""
from __future__ import annotations

import pytest
import torch

from hwnas.core.errors import UsageError
from hwnas.supernet.checkpoint import load_checkpoint
from hwnas.supernet.evaluate import ProxyEvaluator, ProxySettings
from hwnas.supernet.few_shot import FewShotSupernet, route
from hwnas.supernet.spaces import get_space
from hwnas.supernet.trainer import TrainConfig, load_supernet, train

EDGE = 2  # NB201 edge 2<-1: splits into none, skip, conv1x1, conv3x3, avgpool parts
TINY = dict(channels=4, cells=1, max_images=256, batch_size=64, progress=False)


def _marked_split(edge: int = EDGE) -> FewShotSupernet:
    """A tiny NB201 supernet split on `edge`, part k's classifier bias set to k so outputs name their part."""
    torch.manual_seed(0)
    parent = get_space("nb201").build_supernet(channels=4, cells=1)
    model = FewShotSupernet.split(parent, edge, 5)
    with torch.no_grad():
        for k, part in enumerate(model.parts):
            part.classifier.bias.fill_(1000.0 * k)
    return model.eval()


def test_routing_sends_each_arch_to_the_part_of_its_op_on_the_split_edge():
    model = _marked_split()
    space = get_space("nb201")
    x = torch.randn(2, 3, 32, 32)
    rng = __import__("numpy").random.default_rng(0)
    archs = [space.sample(rng) for _ in range(20)]
    assert {a[EDGE] for a in archs} == set(range(5))
    for arch in archs:
        assert route(model, arch) is model.parts[arch[EDGE]]
        with torch.no_grad():
            out = model(x, arch)
            assert torch.equal(out, model.parts[arch[EDGE]](x, arch))
            assert (out.mean() / 1000.0).round().item() == arch[EDGE]  # the bias mark of its own part
    plain = model.parts[0]
    assert route(plain, archs[0]) is plain  # an unsplit supernet lends its own weights


def test_a_subnet_inherits_the_weights_of_its_part():
    model = _marked_split()
    space = get_space("nb201")
    arch = space.from_str("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    subnet = space.build_subnet(arch, supernet=route(model, arch)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(subnet(x), model(x, arch), atol=1e-6)


def test_a_split_forward_needs_a_single_path():
    with pytest.raises(UsageError, match="single paths"):
        _marked_split()(torch.randn(1, 3, 32, 32), weights=torch.zeros(6, 5))


def _few_shot_cfg(data_dir, out, **kw) -> TrainConfig:
    return TrainConfig(**{**TINY, "mode": "spos", "epochs": 2, "few_shot_edge": EDGE, "few_shot_epochs": 1,
                          "data": str(data_dir), "out": str(out), **kw})


def test_a_few_shot_run_fine_tunes_each_part_from_the_parent_on_its_own_paths(data_dir, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    cfg = _few_shot_cfg(data_dir, tmp_path / "run")
    assert cfg.total_epochs() == 1 + 5 and [cfg.epoch_part(e) for e in range(6)] == [
        (None, 0), (0, 1), (1, 1), (2, 1), (3, 1), (4, 1)]
    seen: dict[int, set[int]] = {}
    from hwnas.supernet.modes.spos import SPOS
    sample = SPOS.sample_arch

    def spy(self):
        arch = sample(self)
        seen.setdefault(id(self.model), set()).add(arch[EDGE])
        return arch
    monkeypatch.setattr(SPOS, "sample_arch", spy)
    train(cfg)
    ckpt = load_checkpoint(tmp_path / "run" / "supernet.pt")
    assert ckpt["epoch"] == 5 and ckpt["few_shot"]["edge"] == EDGE and ckpt["few_shot"]["choices"] == 5
    _, model, _ = load_supernet(tmp_path / "run")
    assert isinstance(model, FewShotSupernet) and len(model.parts) == 5
    # the parent sampled several ops on the edge (4 steps); each part only its own
    by_model = list(seen.values())
    assert len(by_model) == 6 and len(by_model[0]) > 1 and by_model[1:] == [{k} for k in range(5)]
    stems = [part.stem[0].weight for part in model.parts]
    assert all(not torch.equal(stems[0], s) for s in stems[1:])  # fine-tuned apart
    # the proxy scores each arch with the weights of its own part
    ev = ProxyEvaluator(tmp_path / "run", ProxySettings(calib_batches=1, eval_images=64), data=str(data_dir),
                        progress=False)
    for op in (2, 3):
        arch = get_space("nb201").from_str(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
        arch = arch[:EDGE] + (op,) + arch[EDGE + 1:]
        stem = ev.subnet(arch).stem[0].weight
        assert torch.equal(stem, model.parts[op].stem[0].weight)
        assert not torch.equal(stem, model.parts[5 - op].stem[0].weight)
        assert 0.0 <= ev.accuracy([arch])[0] <= 100


def test_a_few_shot_run_resumed_across_the_split_equals_an_uninterrupted_one(data_dir, tmp_path,
                                                                            crash_after_checkpoint):
    import hwnas.supernet.trainer as trainer

    torch.set_num_threads(1)
    a, b = tmp_path / "a", tmp_path / "b"
    train(_few_shot_cfg(data_dir, a, max_images=128))
    for _ in range(2):  # killed after the parent's epoch, then after the first part's
        crash_after_checkpoint(trainer)
        with pytest.raises(KeyboardInterrupt):
            train(_few_shot_cfg(data_dir, b, max_images=128), resume=(b / "supernet.pt").exists())
    assert load_checkpoint(b / "supernet.pt")["epoch"] == 1
    train(_few_shot_cfg(data_dir, b, max_images=128), resume=True)
    ca, cb = load_checkpoint(a / "supernet.pt"), load_checkpoint(b / "supernet.pt")
    assert ca["model"].keys() == cb["model"].keys()
    assert all(torch.equal(ca["model"][k], cb["model"][k]) for k in ca["model"])
    assert torch.equal(ca["mode"]["generator"], cb["mode"]["generator"])


@pytest.mark.parametrize("kw, message", [
    (dict(few_shot_edge=6), r"--few-shot-edge 6 is not a decision of this space; valid: 0\.\.5"),
    (dict(few_shot_edge=0, mode="darts"), "SPOS option"),
    (dict(few_shot_edge=0, few_shot_epochs=2), "must be >= 1 and below --epochs"),
])
def test_bad_few_shot_settings_are_one_line_errors(kw, message, tmp_path):
    with pytest.raises(UsageError, match=message):
        TrainConfig(**{**TINY, "epochs": 2, "out": str(tmp_path / "r"), **kw}).validate()
