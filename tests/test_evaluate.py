"""Proxy evaluation: BN modes, the on-disk cache under concurrent writers, isomorphic archs sharing a score."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from hwnas.core.cache import ResultCache
from hwnas.supernet.evaluate import ProxyEvaluator, ProxySettings
from hwnas.supernet.trainer import TrainConfig, train

SMALL = dict(eval_images=64, calib_batches=1, calib_batch_size=32, eval_batch_size=64)


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("evalrun") / "spos"
    train(TrainConfig(mode="spos", channels=4, cells=1, max_images=256, epochs=1, out=str(out), data=str(data_dir),
                      progress=False))
    return out


def test_cache_keeps_every_write_from_concurrent_writers(tmp_path):
    path = tmp_path / "cache.sqlite"

    def write(worker):
        cache = ResultCache(path)
        for i in range(100):
            cache.put("ckpt", "s", f"arch-{worker}-{i}", float(i), 0.0)
        cache.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = ResultCache(path).get("ckpt", "s", [f"arch-{w}-{i}" for w in range(4) for i in range(100)])
    assert len(got) == 400 and got["arch-3-99"] == 99.0


def test_writers_opening_a_new_cache_at_once_all_get_in(tmp_path):
    # SQLite refuses the switch of a new file to WAL at once ("database is locked") while another connection
    # is opening it; every opener must wait its turn instead of failing
    errors = []
    for rep in range(40):
        path = tmp_path / f"cache{rep}.sqlite"
        start = threading.Barrier(8)

        def write(worker, path=path, start=start):
            start.wait()
            try:
                cache = ResultCache(path)
                cache.put("ckpt", "s", f"arch-{worker}", 1.0, 0.0)
                cache.close()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(exc))

        threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(ResultCache(path).get("ckpt", "s", [f"arch-{w}" for w in range(8)])) == 8 or errors
    assert errors == []


def test_isomorphic_archs_share_one_evaluation(run, data_dir):
    ev = ProxyEvaluator(run, ProxySettings(**SMALL), data=str(data_dir), progress=False, cache=run / "iso.sqlite")
    space = ev.space
    a = space.from_str("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
    b = a  # the same arch asked twice
    iso = [x for x in space.all_archs() if space.canonical(x) == space.canonical(a) and x != a]
    assert iso, "this cell has isomorphic twins"
    acc = ev.accuracy([a, b, iso[0]])
    assert ev.misses == 1 and ev.hits == 2
    assert acc[0] == acc[1] == acc[2]


def test_bn_modes_are_part_of_the_cache_key_and_change_the_score(run, data_dir):
    rng = np.random.default_rng(0)
    scores = {}
    for mode in ("recalibrate", "batch", "inherit"):
        ev = ProxyEvaluator(run, ProxySettings(bn_mode=mode, **SMALL), data=str(data_dir), progress=False,
                            cache=run / "modes.sqlite")
        archs = [ev.space.sample(np.random.default_rng(1)) for _ in range(1)] + [ev.space.sample(rng) for _ in range(5)]
        scores[mode] = ev.accuracy(archs)
        assert ev.misses == len({ev.space.canonical(a) for a in archs})  # nothing borrowed from another mode
        assert ((scores[mode] >= 0) & (scores[mode] <= 100)).all()
    assert not np.array_equal(scores["recalibrate"], scores["inherit"])


def test_unknown_bn_mode_is_a_one_line_error(run):
    with pytest.raises(ValueError, match="unknown BN mode 'magic'; valid: recalibrate, batch, inherit"):
        ProxyEvaluator(run, ProxySettings(bn_mode="magic"))


@pytest.mark.parametrize("option, value, message", [
    ("eval_images", 0, "--eval-images must be an integer >= 1, got 0"),
    ("eval_images", -1, "--eval-images must be an integer >= 1, got -1"),
    ("calib_batches", 0, "--calib-batches must be an integer >= 1 (with --bn-mode recalibrate"),
    ("eval_batch_size", 2.5, "--eval-batch-size must be an integer >= 1, got 2.5"),
])
def test_proxy_settings_that_would_score_every_arch_wrongly_are_refused(run, option, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ProxyEvaluator(run, ProxySettings(**{option: value}))
    assert ProxySettings(bn_mode="inherit", calib_batches=0).validate().calib_batches == 0


def test_cache_goes_beside_the_checkpoint_or_to_the_user_cache_when_the_run_is_read_only(tmp_path, monkeypatch):
    import os

    from hwnas.supernet import evaluate

    ckpt = tmp_path / "run" / "supernet.pt"
    ckpt.parent.mkdir()
    assert evaluate.default_cache_path(ckpt) == tmp_path / "run" / "proxy_cache.sqlite"
    # root may write anywhere, so a read-only folder is simulated rather than made with chmod
    monkeypatch.setattr(evaluate.os, "access", lambda path, mode: False if mode == os.W_OK else True)
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    assert evaluate.default_cache_path(ckpt) == tmp_path / "cache" / "proxy_cache.sqlite"


def test_cached_scores_keep_what_they_cost(run, data_dir):
    space_archs = ["|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
                   "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|"]
    first = ProxyEvaluator(run, ProxySettings(**SMALL), data=str(data_dir), progress=False, cache=run / "cost.sqlite")
    archs = [first.space.from_str(a) for a in space_archs]
    first.accuracy(archs)
    again = ProxyEvaluator(run, ProxySettings(**SMALL), data=str(data_dir), progress=False, cache=run / "cost.sqlite")
    again.accuracy(archs + archs)
    assert again.misses == 0 and again.seconds == 0
    assert again.compute_seconds(archs + archs) == pytest.approx(first.seconds) and first.seconds > 0


def test_channels_last_scoring_gives_the_contiguous_layouts_accuracy(run, data_dir, tmp_path):
    space = ProxyEvaluator(run, ProxySettings(**SMALL), progress=False, cache=tmp_path / "a.sqlite").space
    archs = [space.from_index(i) for i in (3, 777, 5000, 12345)]
    fast = ProxyEvaluator(run, ProxySettings(**SMALL), data=str(data_dir), progress=False, cache=tmp_path / "a.sqlite")
    slow = ProxyEvaluator(run, ProxySettings(**SMALL), data=str(data_dir), progress=False, cache=tmp_path / "b.sqlite",
                          channels_last=False)
    np.testing.assert_allclose(fast.accuracy(archs), slow.accuracy(archs), atol=100 / SMALL["eval_images"])
    assert fast._load_batches()[0][0][0].is_contiguous(memory_format=torch.channels_last)
