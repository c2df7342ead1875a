"""The `hwnas` command line: one-line errors with exit status 2, YAML configs, search output files."""
from __future__ import annotations

import pytest

from evolve.cli import main
from evolve.front import Front


def _error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("quickstart", "train", "search", "devices", "plot"):
        assert cmd in out


def test_bad_values_give_one_line_errors(capsys, data_dir, tmp_path):
    assert "unknown mode 'foo'; valid: spos, darts, gdas" in _error(capsys, ["train", "--mode", "foo"])
    assert "unknown space 'nb101'; valid: mobilenet, nb201, resblock, shufflenet" in _error(capsys, ["train", "--space", "nb101"])
    assert "unknown dataset 'svhn'" in _error(capsys, ["train", "--dataset", "svhn"])
    assert "not found" in _error(capsys, ["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")])
    assert "unknown device 'jetson'" in _error(capsys, ["search", "--oracle", "true", "--device", "jetson",
                                                        "--out", str(tmp_path)])
    assert "unknown objective 'latency'" in _error(capsys, ["search", "--oracle", "true", "--objectives",
                                                            "true_err", "latency", "--out", str(tmp_path)])
    assert "unknown algorithm 'pso'" in _error(capsys, ["search", "--oracle", "true", "--device", "fpga",
                                                        "--algorithm", "pso"])
    assert "needs --supernet" in _error(capsys, ["search", "--device", "fpga"])
    assert "no checkpoint" in _error(capsys, ["search", "--supernet", str(tmp_path / "none"), "--device", "fpga"])
    assert "bad bound" in _error(capsys, ["search", "--oracle", "true", "--device", "fpga", "--max", "fpga<3"])


def test_yaml_config_sets_defaults_and_flags_win(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("mode: nope\nepochs: 2\n")
    assert "unknown mode 'nope'" in _error(capsys, ["train", "--config", str(cfg)])
    assert "unknown mode 'flag'" in _error(capsys, ["train", "--config", str(cfg), "--mode", "flag"])
    cfg.write_text("colour: blue\n")
    assert "unknown option 'colour'" in _error(capsys, ["train", "--config", str(cfg)])
    cfg.write_text("- a list\n")
    assert "mapping" in _error(capsys, ["train", "--config", str(cfg)])


def test_oracle_search_writes_reloadable_front_files(capsys, data_dir, tmp_path):
    out = tmp_path / "fronts"
    assert main(["search", "--oracle", "true", "--device", "pixel3", "--pop-size", "10", "--generations", "3",
                 "--out", str(out), "--quiet"]) == 0
    for ext in ("csv", "parquet", "json", "png"):
        assert (out / f"pixel3.{ext}").stat().st_size > 0
    front = Front.load(out / "pixel3.json")
    assert "arch_str" in front.table and front.table["is_pareto"].any()
    assert front.meta["device"] == "pixel3" and front.meta["hv_ratio"] > 0
    assert main(["plot", str(out / "pixel3.json"), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 0
    assert not list(out.glob("*.tmp"))


def test_devices_lists_hwnasbench_metrics_with_units(capsys, data_dir):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "edgegpu_energy" in out and "mJ" in out and "fpga_latency" in out and "proxy_err" in out
