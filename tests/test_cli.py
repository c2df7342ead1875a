"""The `hwnas` command line: one-line errors with exit status 2 (usage) or 1 (runtime), YAML configs, nested
subcommands with their own --help, search folders, the registries' listings."""
from __future__ import annotations

import dataclasses

import yaml

from hwnas.cli import main
from hwnas.evolve.front import Front


def _run(capsys, argv) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors and --help
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _error(capsys, argv, code: int = 2) -> str:
    got, _, err = _run(capsys, argv)
    assert got == code, err
    err = err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_help_lists_every_command(capsys):
    code, out, _ = _run(capsys, ["--help"])
    assert code == 0
    for cmd in ("quickstart", "train", "retrain", "search", "score", "plot", "export", "measure", "lut", "agent",
                "space", "list", "data"):
        assert cmd in out


def test_nested_subcommands_have_their_own_help(capsys):
    code, build, _ = _run(capsys, ["lut", "build", "--help"])
    assert code == 0 and "--lut" in build and "--target" in build
    assert "--sample" not in build  # a flag of `lut check` only
    code, check, _ = _run(capsys, ["lut", "check", "--help"])
    assert code == 0 and "--sample" in check
    code, _, err = _run(capsys, ["lut"])
    assert code == 2 and "ACTION" in err


def test_every_config_field_has_a_flag(capsys):
    """Flags are generated from the config dataclasses, so none is missing (weight_decay and protocol were)."""
    from hwnas.core.config import flat_fields
    from hwnas.evolve.explore import SearchConfig
    from hwnas.supernet.retrain import RetrainConfig
    from hwnas.supernet.trainer import TrainConfig

    from hwnas.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "_command").choices
    for command, cls in (("train", TrainConfig), ("retrain", RetrainConfig), ("search", SearchConfig)):
        actions = {a.dest: a for a in commands[command]._actions}
        for key, (_, _, f) in flat_fields(cls).items():
            if f.metadata.get("cli", True):
                flag = f.metadata.get("flag") or "--" + key.replace("_", "-")
                assert key in actions and flag in actions[key].option_strings, f"{command} has no {flag} for {key}"
                if f.default is not dataclasses.MISSING:
                    assert actions[key].default == f.default, f"{command} {flag}: default differs from {cls.__name__}"
    _, text, _ = _run(capsys, ["train", "--help"])
    assert "--weight-decay" in text and "--protocol" in text and "(default: 0.0005)" in text


def test_bad_values_give_one_line_errors(capsys, data_dir, tmp_path):
    assert "unknown mode 'foo'; valid: spos, darts, gdas, fbnet, enas, canas, htas" in _error(capsys, ["train", "--mode", "foo"])
    assert "unknown space 'nb101'; valid: mobilenet, nb201, resblock, shufflenet" in _error(
        capsys, ["train", "--space", "nb101"])
    assert "unknown dataset 'svhn'" in _error(capsys, ["train", "--dataset", "svhn"])
    assert "unknown target 'jetson'" in _error(capsys, ["search", "--oracle", "--target", "jetson",
                                                        "--out", str(tmp_path / "a")])
    assert "unknown objective 'latency'" in _error(capsys, ["search", "--oracle", "--objectives", "true_err",
                                                            "latency", "--out", str(tmp_path / "b")])
    assert "unknown algorithm 'pso'" in _error(capsys, ["search", "--oracle", "--target", "fpga",
                                                        "--algorithm", "pso"])
    assert "needs --supernet" in _error(capsys, ["search", "--target", "fpga"])
    assert "bad bound" in _error(capsys, ["search", "--oracle", "--target", "fpga", "--max", "fpga<3"])
    err = _error(capsys, ["search", "--oracle", "--target", "fpga", "--device", "fpga"])
    assert "--device is the torch device" in err and "use --target fpga" in err
    assert "invalid int value" in _error(capsys, ["train", "--epochs", "many"])


def test_runtime_failures_exit_1(capsys, tmp_path):
    assert "not found" in _error(capsys, ["train", "--data", str(tmp_path / "nowhere"), "--out",
                                          str(tmp_path / "r")], code=1)
    assert "no checkpoint" in _error(capsys, ["search", "--supernet", str(tmp_path / "none"), "--target", "fpga"],
                                     code=1)
    bad = tmp_path / "run"
    bad.mkdir()
    (bad / "supernet.pt").write_bytes(b"not a checkpoint")
    assert "corrupt" in _error(capsys, ["search", "--supernet", str(bad), "--target", "fpga", "--out",
                                        str(tmp_path / "f")], code=1)


def test_yaml_config_sets_defaults_and_flags_win(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("mode: nope\nepochs: 2\n")
    assert "unknown mode 'nope'" in _error(capsys, ["train", "--config", str(cfg)])
    assert "unknown mode 'flag'" in _error(capsys, ["train", "--config", str(cfg), "--mode", "flag"])
    cfg.write_text("colour: blue\n")
    assert "unknown option 'colour'" in _error(capsys, ["train", "--config", str(cfg)])
    cfg.write_text("- a list\n")
    assert "mapping" in _error(capsys, ["train", "--config", str(cfg)])
    cfg.write_text("epochs: [1, 2]\n")
    assert "option 'epochs' must be an integer, got [1, 2]" in _error(capsys, ["train", "--config", str(cfg)])
    cfg.write_bytes(b"\xff\xfe epochs: 1")
    assert "not UTF-8" in _error(capsys, ["train", "--config", str(cfg)])


def test_search_writes_a_folder_of_its_own_and_refuses_to_overwrite_it(capsys, data_dir, tmp_path):
    out = tmp_path / "fronts" / "x"
    argv = ["search", "--oracle", "--target", "pixel3", "--pop-size", "10", "--generations", "3", "--out", str(out),
            "--quiet"]
    code, stdout, err = _run(capsys, argv)
    assert code == 0, err
    for ext in ("csv", "parquet", "json", "png"):
        assert (out / f"pixel3.{ext}").stat().st_size > 0
    assert (out / "search.log").read_text().count("pixel3") >= 2
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["targets"] == ["pixel3"] and config["oracle"] is True and config["pop_size"] == 10
    front = Front.load(out / "pixel3.json")
    assert "arch_str" in front.table and front.table["is_pareto"].any()
    assert front.meta["target"] == "pixel3" and front.meta["hv_ratio"] > 0
    assert not list(out.glob("*.tmp"))
    # a second search into the same folder is refused, naming --overwrite; with it, it replaces the search
    assert "--overwrite" in _error(capsys, argv)
    code, _, err = _run(capsys, [*argv[:3], "fpga", *argv[4:], "--overwrite"])
    assert code == 0, err
    assert (out / "fpga.json").is_file() and not (out / "pixel3.json").exists()
    # the folder's config.yaml is a --config file: the same search again
    again = tmp_path / "again"
    code, _, err = _run(capsys, ["search", "--config", str(out / "config.yaml"), "--out", str(again), "--quiet"])
    assert code == 0, err
    assert Front.load(again / "fpga.json").table.equals(Front.load(out / "fpga.json").table)
    # a list option given as a flag replaces the file's list instead of adding to it
    other = tmp_path / "other"
    code, _, err = _run(capsys, ["search", "--config", str(out / "config.yaml"), "--target", "raspi4", "--out",
                                 str(other), "--quiet"])
    assert code == 0, err
    assert sorted(p.name for p in other.glob("*.json")) == ["raspi4.json"]
    code, _, _ = _run(capsys, ["plot", str(out / "fpga.json"), "--out", str(tmp_path / "p.png")])
    assert code == 0 and (tmp_path / "p.png").stat().st_size > 0


def test_list_objectives_prints_unit_direction_and_cost_class(capsys, data_dir):
    code, out, _ = _run(capsys, ["list", "objectives"])
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["proxy_err"][1:4] == ["%", "min", "supernet"]
    assert rows["edgegpu_energy"][1:4] == ["mJ", "min", "table"]
    assert rows["flops"][1:4] == ["M", "min", "counter"]
    assert rows["measured_latency:<target>"][1:4] == ["ms", "min", "device"]
    code, out, _ = _run(capsys, ["list", "targets", "edge*"])
    assert code == 0 and "edgegpu_latency" in out and "fpga" not in out
    for kind, name in (("spaces", "mobilenet"), ("modes", "gdas"), ("algorithms", "random")):
        code, out, _ = _run(capsys, ["list", kind])
        assert code == 0 and name in out


def test_devices_is_an_alias_with_a_deprecation_note(capsys, data_dir):
    code, out, err = _run(capsys, ["devices"])
    assert code == 0 and "edgegpu_energy" in out and "proxy_err" in out
    assert "hwnas list objectives" in err and len(err.strip().splitlines()) == 1


def test_score_writes_every_objective_of_the_sampled_canonical_cells(capsys, tmp_path, data_dir):
    import pandas as pd

    from hwnas.evolve.ranking import sample_classes
    from hwnas.supernet.nb201_net import conv_depth, live_convs
    from hwnas.supernet.spaces import get_space

    out = tmp_path / "scores.csv"
    code, printed, err = _run(capsys, ["score", "--sample", "5", "--objectives", "zc:live_convs", "zc:conv_depth",
                                       "--out", str(out), "--quiet"])
    assert code == 0, err
    table = pd.read_csv(out)
    space = get_space("nb201")
    archs = sample_classes(space, 5, seed=0)
    assert table.arch_str.tolist() == [space.to_str(a) for a in archs]
    assert table.zc_live_convs.tolist() == [live_convs(a) for a in archs]
    assert table.zc_conv_depth.tolist() == [conv_depth(a) for a in archs]
    assert f"wrote {out} (5 archs x 2 scores)" in printed
    assert "--sample must be >= 1" in _error(capsys, ["score", "--sample", "0", "--objectives", "zc:live_convs"])
    assert "objective 'zc' needs a signal" in _error(capsys, ["score", "--all", "--objectives", "zc"])
    assert "needs a trained supernet" in _error(capsys, ["score", "--sample", "2", "--objectives", "proxy_err"])
