"""The layer-wise spaces (mobilenet, shufflenet, resblock): encodings, the identity rule, subnets that build
and run, supernet paths equal to their standalone subnets, every training mode, a tiny SPOS run that
beats chance, NSGA-II fronts, per-block lookup tables, export and retraining.

Most tests use a reduced layout (`SMALL` stages: fewer, narrower layers) so that CPU runs take seconds;
the code paths are those of the full default spaces, whose sizes and rules are checked separately.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.supernet.spaces import get_space, space_from_config
from hwnas.supernet.trainer import TrainConfig, load_supernet, train

SPACES = ("mobilenet", "shufflenet", "resblock")
SMALL = {"mobilenet": [[1.5, 1, 1], [2, 2, 2], [4, 1, 2]],
         "shufflenet": [[4, 1, 1], [10, 2, 2], [20, 2, 2]],
         "resblock": [[2, 1, 1], [4, 1, 2]]}
# Tiny SPOS recipes that beat chance on this machine (1 thread; held-out accuracy of the 4-arch panel on
# 1,000 images, where chance is 10% with a std of ~0.95%): mobilenet 18.7% (~55 s), shufflenet 18.6%
# (~37 s), resblock 15.3% (~38 s; its 14 unlike blocks per layer share one head, so SPOS learns slowly).
BEATS_CHANCE = {"mobilenet": dict(max_images=2048, epochs=2), "shufflenet": dict(max_images=2048, epochs=2),
                "resblock": dict(max_images=4096, epochs=4)}
THRESHOLD = 13.0


def small(name: str):
    return get_space(name, stages=SMALL[name])


@pytest.fixture(scope="module", params=SPACES)
def trained(request, data_dir, tmp_path_factory):
    """(space name, run folder, result) of a tiny SPOS run on that space's reduced layout."""
    name = request.param
    out = tmp_path_factory.mktemp(name) / "spos"
    torch.set_num_threads(1)
    result = train(TrainConfig(space=name, space_options={"stages": SMALL[name]}, mode="spos", channels=8,
                               batch_size=64, held_out_images=1000, out=str(out), data=str(data_dir),
                               progress=False, **BEATS_CHANCE[name]))
    return name, out, result


# ------------------------------------------------------------------------------------------ encoding
@pytest.mark.parametrize("name", SPACES)
def test_encode_decode_and_strings_round_trip(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = space.sample(rng)
        assert space.decode(space.encode(arch)) == arch
        assert space.from_str(space.to_str(arch)) == arch
        assert space.parse(space.to_str(arch)) == arch
        assert space.canonical(arch) == arch
    assert space.decode(space.encode(arch).astype(float) + 0.3) == arch  # pymoo's float operators round back


def test_default_layouts_follow_the_stated_rules():
    mb, sh, rb = (get_space(n) for n in SPACES)
    assert len(mb.num_choices) == len(sh.num_choices) == 20
    first = [i for i in range(20) if i == 0 or mb.layer_stage(i) != mb.layer_stage(i - 1)]
    assert first == [0, 4, 8, 12, 16]
    # identity only where shapes allow: never on a stage's first layer
    assert [n for i, n in enumerate(mb.num_choices) if i in first] == [6] * 5
    assert all(n == 7 for i, n in enumerate(mb.num_choices) if i not in first)
    assert mb.size == 7 ** 15 * 6 ** 5
    assert all("skip" not in mb.choices(i) for i in first)
    assert sh.size == 4 ** 4 * 5 ** 16 and sh.choices(1) == ("shuffle3", "shuffle5", "shuffle7", "xception", "skip")
    assert rb.num_choices == (14,) * 4 and rb.size == 38416


@pytest.mark.parametrize("text, match", [
    ("k3e3", "names 1 blocks; space 'mobilenet' has 20 layers"),
    ("skip-" + "-".join(["k3e3"] * 19), "unknown block 'skip' at layer 0 of 'mobilenet'; valid: k3e3, k3e6"),
    ("-".join(["k9e3"] * 20), "unknown block 'k9e3' at layer 0"),
])
def test_bad_arch_strings_name_the_problem(text, match):
    with pytest.raises(ValueError, match=match):
        get_space("mobilenet").from_str(text)


@pytest.mark.parametrize("options, match", [
    (dict(stages=[[1, 0, 1]]), "stages must be a list"),
    (dict(stages=[[1, 1, 3]]), "stride 1|2"),
    (dict(depth=3), "unknown option 'depth' for space 'mobilenet'; valid: stages, kernels"),
    (dict(kernels=[4]), "kernels must be odd"),
    (dict(hidden=[[48, 96]] * 5), "need 'hidden_channels'"),
    (dict(hidden=[[48]] * 2, hidden_channels=16), "hidden must be 5 lists"),
])
def test_bad_space_options_name_the_problem(options, match):
    with pytest.raises(ValueError, match=match):
        get_space("mobilenet", **options)
    with pytest.raises(ValueError, match="space 'nb201' takes no options, got stages"):
        get_space("nb201", stages=[[1, 1, 1]])


# ------------------------------------------------------------------------------------------ networks
@pytest.mark.parametrize("name", SPACES)
def test_sampled_subnets_build_run_and_equal_their_supernet_path(name):
    torch.manual_seed(0)
    space = small(name)
    supernet = space.build_supernet(channels=8).eval()
    x = torch.randn(3, 3, 32, 32)
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(6)] + [tuple(n - 1 for n in space.num_choices)]
    with torch.no_grad():
        for arch in archs:
            alone = space.build_subnet(arch, channels=8)  # standalone, fresh weights
            assert alone(x).shape == (3, 10)
            inherited = space.build_subnet(arch, supernet=supernet).eval()
            # only the arch's blocks (with sharing, an arch of the largest blocks is as big as its supernet)
            assert sum(p.numel() for p in inherited.parameters()) <= sum(p.numel() for p in supernet.parameters())
            torch.testing.assert_close(inherited(x), supernet(x, arch), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", SPACES)
def test_one_hot_mixture_and_hard_sample_equal_the_single_path(name):
    torch.manual_seed(0)
    space = small(name)
    net = space.build_supernet(channels=8).eval()
    arch = space.sample(np.random.default_rng(2))
    one_hot = torch.zeros(len(arch), max(space.num_choices))
    one_hot[torch.arange(len(arch)), torch.tensor(arch)] = 1.0
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x, weights=one_hot), net(x, arch), rtol=0, atol=1e-5)
        torch.testing.assert_close(net(x, hard=(one_hot, list(arch))), net(x, arch), rtol=0, atol=1e-5)


def test_arch_parameters_never_pick_a_choice_a_layer_does_not_have():
    from hwnas.supernet.modes import DARTS, GDAS

    space = small("mobilenet")  # first layers of a stage have 6 choices, the others 7
    net = space.build_supernet(channels=8)
    for cls in (DARTS, GDAS):
        mode = cls(net, space, torch.optim.SGD(net.parameters(), lr=0.01))
        with torch.no_grad():
            mode.alpha[:, -1] = 100.0  # the 7th entry ("skip") dominates wherever it exists
        arch = mode.derived_arch()
        space.validate(arch)
        assert [space.choices(i)[a] == "skip" for i, a in enumerate(arch)] == [n == 7 for n in space.num_choices]
        assert torch.isfinite(torch.tensor(mode.summary()["alpha_softmax"])).all()
    w = DARTS(net, space, torch.optim.SGD(net.parameters(), lr=0.01)).weights()
    assert torch.all(w[torch.tensor(space.num_choices) == 6, 6] == 0)
    hard, index = GDAS(net, space, torch.optim.SGD(net.parameters(), lr=0.01)).sample()
    space.validate(index)


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("mode", ["darts", "gdas"])
def test_differentiable_modes_train_on_layerwise_spaces(name, mode, data_dir, tmp_path):
    result = train(TrainConfig(space=name, space_options={"stages": SMALL[name]}, mode=mode, channels=4,
                               max_images=128, epochs=1, batch_size=64, held_out_images=128, out=str(tmp_path / mode),
                               data=str(data_dir), progress=False))
    space = small(name)
    assert space.from_str(result["derived_arch"])  # a valid arch of this space
    assert 0.0 <= result["val_acc"] <= 100.0


# ------------------------------------------------------------------------------------------ training
def test_tiny_spos_run_beats_chance_and_reloads(trained):
    name, run, result = trained
    assert result["val_acc"] > THRESHOLD, f"{name}: held-out accuracy {result['val_acc']:.1f}% is chance level"
    space, supernet, cfg = load_supernet(run)
    assert space.name == name and space.options == {"stages": SMALL[name]}
    assert space_from_config(cfg).num_choices == small(name).num_choices


def test_nsga2_front_is_non_dominated(trained):
    from hwnas.evolve.objectives import get_objective
    from hwnas.evolve.sources import Sources
    from hwnas.evolve.pareto import non_dominated_mask
    from hwnas.evolve.search import search
    from hwnas.supernet.evaluate import ProxySettings

    name, run, _ = trained
    ctx = Sources(supernet=str(run), progress=False, proxy_settings=ProxySettings(eval_images=250,
                                                                                         calib_batches=2))
    assert ctx.space.name == name and ctx.space.options == {"stages": SMALL[name]}
    objectives = [get_objective(n, ctx) for n in ("proxy_err", "flops")]
    front = search(ctx.space, objectives, pop_size=8, generations=3, seed=0, progress=False)
    table = front.table
    F = table[["proxy_err_pct", "flops_m"]].to_numpy()
    pareto = table.is_pareto.to_numpy()
    assert pareto.any()
    assert np.array_equal(pareto, non_dominated_mask(F))
    for arch in table.arch_str[pareto]:
        ctx.space.from_str(arch)
    with pytest.raises(ValueError, match="cover the nb201 space only; for space '" + name):
        get_objective("edgegpu_latency", ctx)
    with pytest.raises(ValueError, match=f"was trained on space '{name}' with options .*; this asks 'nb201'"):
        Sources(space="nb201", supernet=str(run))


def test_nsga2_matches_exhaustive_enumeration_on_a_small_space():
    from hwnas.evolve.objectives import get_objective
    from hwnas.evolve.sources import Sources
    from hwnas.evolve.pareto import non_dominated_mask
    from hwnas.evolve.search import search

    space = get_space("resblock", stages=[[1, 1, 1], [2, 1, 2]])  # 14 x 14 = 196 archs
    ctx = Sources(space=space, net={"channels": 8, "cells": 1}, progress=False)
    objectives = [get_objective(n, ctx) for n in ("params", "flops")]
    every = [(a, b) for a in range(14) for b in range(14)]
    F = np.column_stack([o(every) for o in objectives])
    exact = {space.to_str(a) for a, keep in zip(every, non_dominated_mask(F)) if keep}
    front = search(space, objectives, pop_size=40, generations=15, seed=0, progress=False)
    found = set(front.table.arch_str[front.table.is_pareto])
    assert found == exact


# ------------------------------------------------------------------------------------------ hardware
@pytest.mark.parametrize("name", SPACES)
def test_lookup_table_blocks_cover_every_arch_and_add_up_to_its_flops(name):
    from hwnas.hardware import counters

    space = small(name)
    blocks = space.latency_blocks((1, 3, 32, 32), channels=8)
    flops = {b: counters.flops_m(m, shape) for b, (m, shape) in blocks.items()}
    rng = np.random.default_rng(3)
    for _ in range(5):
        arch = space.sample(rng)
        names = space.arch_blocks(arch, channels=8)
        subnet = space.build_subnet(arch, channels=8)
        assert sum(flops[b] for b in names) == pytest.approx(counters.flops_m(subnet, (1, 3, 32, 32)))


def test_tailored_widths_differ_from_uniform_ones_when_latency_has_steps():
    from hwnas.evolve.tailor import fit_power_law, tailor_widths, uniform_widths

    k, a, b = fit_power_law([1, 2, 3, 4, 5], [2 * x ** 1.5 + 3 for x in [1, 2, 3, 4, 5]])
    assert (k, a, b) == pytest.approx((2.0, 1.5, 3.0), abs=1e-6)
    candidates = list(range(16, 257, 8))
    steps = [1.0 + np.ceil(x / 32) for x in candidates]  # a new tile of 32 channels costs a step
    out = tailor_widths(candidates, steps, groups=4)
    assert all(x % 32 == 0 for x in out["chosen"])  # the widest count of a step is the cheapest per channel
    assert out["chosen"] != out["uniform"] == uniform_widths(candidates, 4)
    smooth = tailor_widths(candidates, [0.01 * x + 1 for x in candidates], groups=4)
    assert len(smooth["chosen"]) == 4 and np.allclose(smooth["score"], 0, atol=1e-9)
    with pytest.raises(ValueError, match="--groups must be in 1..31"):
        tailor_widths(candidates, steps, groups=40)


def test_tailored_space_uses_the_chosen_widths(tmp_path):
    from hwnas.evolve.tailor import load_tailored, tailor_space
    from hwnas.core.files import atomic_write_json

    space = get_space("mobilenet", stages=[[1.5, 1, 1], [2, 2, 2]])
    fake_latency = {}

    def latency(module, shape):  # synthetic: steps of 16 expanded channels
        hidden = max(m.out_channels for m in module.modules() if isinstance(m, torch.nn.Conv2d))
        fake_latency[hidden] = 1.0 + np.ceil(hidden / 16)
        return fake_latency[hidden]
    report = tailor_space(space, latency, channels=16, groups=3, progress=False)
    assert [s["width"] for s in report["stages"]] == [24, 32]
    atomic_write_json(tmp_path / "t.json", report)
    options = load_tailored(tmp_path / "t.json", "mobilenet", 16)
    assert options["stages"] == [[1.5, 1, 1], [2, 2, 2]]  # the layout it was tailored for travels with it
    tailored = get_space("mobilenet", **options)
    chosen = report["stages"][1]["chosen"]
    assert all(h % 16 == 0 for h in chosen)
    assert tailored.choices(1) == tuple(f"k{k}h{h}" for k in (3, 5, 7) for h in chosen)  # first of stage 2
    assert tailored.choices(2) == tailored.choices(1) + ("skip",)
    net = tailored.build_subnet(tailored.from_str(f"k3h{report['stages'][0]['chosen'][0]}-k5h{chosen[1]}-skip"),
                                channels=16)
    hidden = [m.out_channels for m in net.layers[1].modules() if isinstance(m, torch.nn.Conv2d)][0]
    assert hidden == chosen[1]
    with pytest.raises(ValueError, match="tailored for C=16, not C=8"):
        load_tailored(tmp_path / "t.json", "mobilenet", 8)
    with pytest.raises(ValueError, match="chosen for C=16; got C=8"):
        tailored.build_supernet(channels=8)



def test_commands_take_a_tailoring_report(tmp_path, capsys):
    from hwnas.cli import main
    from hwnas.evolve.tailor import tailor_space
    from hwnas.core.files import atomic_write_json

    space = get_space("mobilenet", stages=[[1.5, 1, 1], [2, 2, 2]])
    report = tailor_space(space, lambda module, shape: float(sum(p.numel() for p in module.parameters())),
                          channels=16, groups=2, progress=False)
    atomic_write_json(tmp_path / "t.json", report)
    chosen = report["stages"][1]["chosen"]
    assert main(["space", "show", "--space", "mobilenet", "--tailored", str(tmp_path / "t.json")]) == 0
    shown = capsys.readouterr().out
    assert f"k7h{chosen[-1]}" in shown and "    2     2    32    32      1" in shown
    arch = f"k3h{report['stages'][0]['chosen'][0]}-k5h{chosen[0]}-skip"
    assert main(["measure", "--space", "mobilenet", "--tailored", str(tmp_path / "t.json"), "--arch", arch,
                 "--warmup", "0", "--repeats", "2"]) == 0
    assert "ms" in capsys.readouterr().out
    exit__code = main(["measure", "--space", "mobilenet", "--tailored", str(tmp_path / "t.json"), "--arch", arch,
          "--channels", "8"])
    assert exit__code == 2 and "tailored for C=16, not C=8" in capsys.readouterr().err


def test_remote_request_carries_space_options():
    from hwnas.supernet.spaces.describe import build_described, describe_request

    space = small("shufflenet")
    arch = space.to_str(space.sample(np.random.default_rng(0)))
    request = describe_request("shufflenet", arch, {"channels": 8}, space_options=space.options)
    assert request["space_options"] == {"stages": SMALL["shufflenet"]}
    model = build_described(request)
    assert len(model.layers) == 5
    with pytest.raises(ValueError, match="'space_options' must be an object"):
        build_described({**request, "space_options": [1]})


# ------------------------------------------------------------------------------------------ deploy
def test_export_to_onnx_matches_pytorch_and_state_dict_round_trips(trained, tmp_path, data_dir):
    pytest.importorskip("onnxruntime")
    from hwnas.supernet.export import check_export, export_subnet, load_state_dict_export, subnet_from_run

    name, run, _ = trained
    space = small(name)
    arch = space.to_str(space.sample(np.random.default_rng(4)))
    model, desc = subnet_from_run(run, arch, data=str(data_dir))
    assert desc["space_options"] == {"stages": SMALL[name]}
    x = torch.randn(4, 3, 32, 32)
    path = export_subnet(model, desc, "onnx", tmp_path / "m.onnx")
    assert check_export(model, path, "onnx", x) <= 1e-4
    path = export_subnet(model, desc, "state_dict", tmp_path / "m.pt")
    assert check_export(model, path, "state_dict", x) == 0.0
    assert load_state_dict_export(path).arch == space.from_str(arch)


def test_retrain_on_a_layerwise_space_resumes_exactly(data_dir, tmp_path, crash_after_checkpoint):
    import hwnas.supernet.retrain as retrain_module
    from hwnas.supernet.checkpoint import load_checkpoint
    from hwnas.supernet.retrain import RetrainConfig, retrain

    common = dict(space="resblock", space_options={"stages": SMALL["resblock"]}, arch="basic1-mbconv", channels=4,
                  max_images=128, batch_size=64, epochs=2, data=str(data_dir), progress=False)
    whole = retrain(RetrainConfig(**common, out=str(tmp_path / "whole")))
    crash_after_checkpoint(retrain_module)
    with pytest.raises(KeyboardInterrupt):  # killed right after epoch 1's checkpoint
        retrain(RetrainConfig(**common, out=str(tmp_path / "split")))
    resumed = retrain(RetrainConfig(**common, out=str(tmp_path / "split")), resume=True)
    a, b = (load_checkpoint(tmp_path / d / "retrain.pt")["model"] for d in ("whole", "split"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["test_acc"] == whole["test_acc"]
    assert resumed["space_options"] == {"stages": SMALL["resblock"]}
