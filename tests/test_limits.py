"""Size checks before anything is built (supernet.limits): the estimate counts parameters exactly, absurd
sizes and over-budget networks are one line with nothing built or written, deep JSON files are one line."""
from __future__ import annotations

import pytest
import torch

from hwnas.cli import main as cli_main
from hwnas.core.errors import BudgetError
from hwnas.supernet.limits import SizeBudget, check_size, estimate_size, largest_path
from hwnas.supernet.spaces import get_space


@pytest.mark.parametrize("name", ["nb201", "mobilenet", "shufflenet", "resblock"])
def test_the_estimate_counts_the_parameters_of_what_would_be_built(name):
    space = get_space(name)
    est = estimate_size(space, channels=4, cells=1, num_classes=10, batch_size=2)
    built = space.build_supernet(channels=4, cells=1, num_classes=10)
    assert est["params"] == sum(p.numel() for p in built.parameters())
    arch = largest_path(space)
    sub = estimate_size(space, 4, 1, 10, 2, supernet=False, arch=arch, training=False)
    assert sub["params"] == sum(p.numel() for p in space.build_subnet(arch, channels=4, cells=1).parameters())
    # activations: every module's output at batch 2 is twice that at batch 1; the quick bound is above them
    one = estimate_size(space, 4, 1, 10, 1, supernet=False, arch=arch, training=False)
    assert sub["activation_gb"] == pytest.approx(2 * one["activation_gb"])
    quick = estimate_size(space, 4, 1, 10, 2, supernet=False, arch=arch, training=False, exact=False)
    assert quick["params"] == sub["params"] and quick["activation_gb"] >= sub["activation_gb"] > 0


def test_over_budget_is_one_line_naming_the_estimate_and_the_limit():
    space = get_space("nb201")
    with pytest.raises(ValueError, match=r"has 1\.7M parameters; the limit is 1M \(--max-params\)"):
        check_size(space, 16, 5, budget=SizeBudget(max_params=1e6))
    with pytest.raises(ValueError, match=r"needs about [\d.]+ GB to train at batch 4096 .* the limit is 0\.5 GB"):
        check_size(space, 16, 5, batch_size=4096, budget=SizeBudget(max_memory_gb=0.5))
    assert check_size(space, 16, 5, batch_size=64)["params"] == 1692826
    with pytest.raises(ValueError, match="--max-memory-gb must be a positive number"):
        SizeBudget(max_memory_gb=-1).validate()


@pytest.mark.parametrize("argv, needle", [
    (["--channels", "1000000"], "--channels must be an integer in 1..2048, got 1000000"),
    (["--cells", "10000000"], "--cells must be an integer in 1..64, got 10000000"),
    (["--channels", "512", "--cells", "20"], "has 6680.3M parameters; the limit is 500M (--max-params)"),
    (["--batch-size", "60000"], "GB to train at batch 60000"),
    (["--space", "mobilenet", "--space-option", "stages=[[1,1000000000,1]]"], "a stage's depth must be"),
    (["--max-images", "100", "--batch-size", "128"], "--batch-size 128 is larger than the smallest split"),
])
def test_train_refuses_absurd_sizes_in_one_line_and_leaves_no_run_folder(argv, needle, tmp_path, data_dir, capsys):
    out = tmp_path / "runs" / "x"
    assert cli_main(["train", *argv, "--data", str(data_dir), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert list(tmp_path.iterdir()) == []  # not even runs/


def test_measure_refuses_an_absurd_subnet_before_building_it(capsys):
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert cli_main(["measure", "--arch", arch, "--channels", "1024", "--cells", "20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the limit is 500M (--max-params)" in err[0], err


@pytest.mark.parametrize("name", ["front.json", "lut.json"])
def test_deeply_nested_json_files_are_one_line(name, tmp_path, capsys):
    path = tmp_path / name
    path.write_text("[" * 100000 + "]" * 100000)
    argv = ["plot", str(path), "--out", str(tmp_path / "p.png")] if name == "front.json" else \
        ["lut", "check", "--lut", str(path), "--sample", "3"]
    assert cli_main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("nested too deeply" in err[0]), err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_meta_estimates_leave_torch_defaults_alone():
    estimate_size(get_space("nb201"), 4, 1)
    assert torch.empty(1).device.type == "cpu"


@pytest.mark.parametrize("argv, needle", [
    (["measure", "--arch", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--threads", "100000"],
     "--threads must be an integer in 1..1024, got 100000"),
    (["agent", "serve", "--token-file", "{token}", "--port", "70000"], "--port must be an integer in 0..65535"),
    (["agent", "serve", "--token-file", "{token}", "--threads", "0"], "--threads must be an integer in 1..1024"),
])
def test_thread_counts_and_ports_are_range_checked(argv, needle, tmp_path, capsys):
    token = tmp_path / "token"
    token.write_text("a" * 64)
    token.chmod(0o600)
    assert cli_main([a.replace("{token}", str(token)) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1] and err[-1].startswith("hwnas: error:"), err


def test_a_failed_run_removes_only_what_it_created(tmp_path):
    """`runs/` did not exist; while this run failed, another run started in `runs/other`: that one stays."""
    from hwnas.supernet.trainer import run_in_folder

    out = tmp_path / "runs" / "x"

    def body():
        out.mkdir(parents=True, exist_ok=True)
        (out / "half.csv").write_text("partial")
        (tmp_path / "runs" / "other").mkdir()
        (tmp_path / "runs" / "other" / "supernet.pt").write_text("someone else's")
        raise RuntimeError("failed in epoch 1")

    with pytest.raises(RuntimeError):
        run_in_folder(out, out / "supernet.pt", body)
    assert not out.exists() and (tmp_path / "runs" / "other" / "supernet.pt").exists()


def test_agent_serve_flags_default_to_the_agent_budget():
    from hwnas.cli import build_parser
    from hwnas.supernet.spaces.describe import AGENT_BUDGET

    args = build_parser().parse_args(["agent", "serve", "--token-file", "t"])
    assert (args.max_params, args.max_memory_gb) == (AGENT_BUDGET.max_params, AGENT_BUDGET.max_memory_gb)


def test_the_run_clock_extrapolates_from_steps_2_to_4_and_stops_a_run_past_its_limit(monkeypatch):
    import hwnas.supernet.limits as limits

    now = [0.0]
    monkeypatch.setattr(limits.time, "perf_counter", lambda: now[0])

    def run(clock, step_seconds):
        for seconds in step_seconds:
            now[0] += seconds
            clock.step_done()

    # the first step (warm-up, 30 s) is in the elapsed time, not in the per-step rate: 30 + 3 + 1 x 96 = 129 s
    run(limits.RunClock(130, 100), [30, 1, 1, 1])
    with pytest.raises(BudgetError, match=r"100 training steps would take about 2 min \(1 s per step over steps "
                                          r"2-4\); the limit is 120 s \(--max-seconds\)"):
        run(limits.RunClock(120, 100), [30, 1, 1, 1])
    with pytest.raises(BudgetError, match="1 s per step"):  # the median: one slow step does not decide
        run(limits.RunClock(50, 100), [1, 1, 9, 1])
    clock = limits.RunClock(10, 4)  # a run of 4 steps is never refused up front ...
    run(clock, [5, 5, 5, 5])
    clock.epoch_done(1, last=True)  # ... and a finished run is never stopped
    clock = limits.RunClock(10, 40)
    run(clock, [0.1] * 4)
    now[0] += 20
    with pytest.raises(BudgetError, match=r"stopped after epoch 2: 20 s elapsed.*--resume continues"):
        clock.epoch_done(1, last=False)
    limits.RunClock(None, 10**9).step_done()  # no limit: nothing measured
    with pytest.raises(BudgetError, match="--max-seconds must be a positive number, got -1"):
        limits.RunBudget(max_seconds=-1).budget()


@pytest.mark.parametrize("command", ["train", "retrain"])
def test_a_run_over_its_time_budget_is_refused_after_four_steps_and_leaves_nothing(command, tmp_path, data_dir,
                                                                                    capsys):
    out = tmp_path / "runs" / command
    extra = ["--arch", get_space("nb201").to_str((3,) * 6)] if command == "retrain" else []
    argv = [command, *extra, "--channels", "4", "--cells", "1", "--max-images", "512", "--batch-size", "32",
            "--epochs", "1000", "--max-seconds", "5", "--data", str(data_dir), "--out", str(out), "--quiet"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the limit is 5 s (--max-seconds)" in err[0], err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["lut", "build", "--lut", "x.json"], ["space", "tailor", "--space", "mobilenet",
                                                                           "--target", "cpu"]])
def test_budget_flags_of_commands_that_build_a_supernet(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli_main([*command, "--max-params", "1000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the limit is 0.001M (--max-params)" in err[0], err
    assert list(tmp_path.iterdir()) == []
