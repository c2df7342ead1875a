"""The NB201 supernet's exact speed-ups (`supernet.nb201_net.SPEEDUPS`) change float rounding only: every
forward style the training modes use gives the plain path's loss and gradients on a fixed batch."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hwnas.supernet.nb201_net import SPEEDUPS, NB201Network

ARCH = (3, 2, 0, 4, 1, 3)  # conv3x3, conv1x1, none, pool, skip, conv3x3: every op kind, a shared node input


def _loss_and_grads(speedups, style: str, layout, seed: int = 0):
    torch.manual_seed(seed)
    net = NB201Network(channels=8, cells=2, num_classes=10).to(memory_format=layout)
    net.speedups = speedups
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, 16, 16, generator=g).contiguous(memory_format=layout)
    y = torch.randint(0, 10, (16,), generator=g)
    alpha = torch.randn(6, 5, generator=g).requires_grad_()
    if style == "path":
        logits = net(x, ARCH)
    elif style == "mixture":
        logits = net(x, weights=torch.softmax(alpha, dim=1))
    else:  # GDAS' hard one-hot with a straight-through gradient, `none` sampled on one edge
        probs = torch.softmax(alpha, dim=1)
        index = list(ARCH)
        hard = F.one_hot(torch.tensor(index), 5).float() - probs.detach() + probs
        logits = net(x, hard=(hard, index))
    loss = F.cross_entropy(logits, y)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    grads["alpha"] = alpha.grad.clone() if alpha.grad is not None else torch.zeros(())
    buffers = {n: b.clone() for n, b in net.named_buffers() if b.is_floating_point()}
    return float(loss.detach()), grads, buffers


@pytest.mark.parametrize("style", ["path", "mixture", "hard"])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("speedup", sorted(SPEEDUPS) + ["all"])
def test_each_speedup_gives_the_plain_loss_and_gradients(style, layout, speedup):
    """Tolerance: 1e-5 relative on the loss; gradients within 1e-3 relative plus 1e-5 of the network's largest
    gradient (BN's batch statistics and a folded scalar round differently; nothing else changes)."""
    plain = _loss_and_grads(frozenset(), style, layout)
    fast = _loss_and_grads(SPEEDUPS if speedup == "all" else frozenset({speedup}), style, layout)
    assert fast[0] == pytest.approx(plain[0], rel=1e-5)
    assert plain[1].keys() == fast[1].keys()
    largest = max(float(g.abs().max()) for g in plain[1].values())
    for name, g in plain[1].items():  # (conv biases before a BatchNorm have zero gradient, up to rounding noise)
        assert torch.allclose(fast[1][name], g, rtol=1e-3, atol=1e-5 * largest), name
    for name, b in plain[2].items():  # running statistics updated alike
        assert torch.allclose(fast[2][name], b, rtol=1e-5, atol=1e-6), name


def test_unknown_speedups_are_refused():
    net = NB201Network(channels=4, cells=1)
    with pytest.raises(ValueError, match="unknown speed-up 'fuse'"):
        net.speedups = {"fuse"}
    assert net.speedups == SPEEDUPS


def test_the_speed_benchmark_reports_every_variant_and_its_check(tmp_path):
    """A tiny run of `python -m hwnas.benchmarks.train_speed` (no reference): every mode's plain, ablation and
    default rows, each speed-up's difference from the plain path small."""
    from hwnas.benchmarks import train_speed

    out = tmp_path / "speed.md"
    assert train_speed.main(["--channels", "4", "--cells", "1", "--batch-size", "16", "--steps", "1", "--warmup", "0",
                             "--min-seconds", "0", "--data", "synthetic", "--out", str(out)]) == 0
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| spos") or line.startswith("| darts")
            or line.startswith("| gdas")]
    assert len(rows) == 3 + 5 + 6  # plain + alone rows + all, per mode
    diffs = [float(r.split("|")[-3]) for r in rows if r.split("|")[-3].strip() != "-"]
    assert diffs and max(diffs) < 1e-4
    assert "command: `python -m hwnas.benchmarks.train_speed --channels 4" in text
