"""The facts about each image-classification data set hwnas trains and scores on, in one table: classes,
image size, normalisation statistics, and where the official files come from.

`DATASETS` is the data-set registry: `DATASETS.get("cifar10").num_classes`, `DATASETS.list()`. Readers of
the files live in `hwnas.supernet.data`; everything else (network heads, input shapes for counters and
timing, the CLI's choices) asks here.

Imports nothing of ours.
"""
from __future__ import annotations

from dataclasses import dataclass

from .registry import Registry


@dataclass(frozen=True)
class DatasetInfo:
    """One data set. `mean`/`std` are per-channel statistics in 0..1 units; `layout` says which reader of
    `hwnas.supernet.data` reads its files; `url`/`md5`/`folder` describe the official download (None where
    there is no public download, as for ImageNet16-120)."""

    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    layout: str
    folder: str
    url: str | None = None
    md5: str | None = None

    def input_shape(self, batch_size: int = 1) -> tuple[int, int, int, int]:
        """The network input for `batch_size` images: (N, 3, H, W)."""
        return (batch_size, 3, self.image_size, self.image_size)


def _unit(stats: tuple[float, float, float]) -> tuple[float, float, float]:
    return tuple(round(v / 255, 6) for v in stats)  # type: ignore[return-value]


DATASETS: Registry[DatasetInfo] = Registry("dataset")

# Statistics exactly those of the NAS-Bench-201 code (xautodl/datasets/get_dataset_with_transform.py), which
# states them in 0..255 units.
for _info in (
    DatasetInfo("cifar10", 10, 32, _unit((125.3, 123.0, 113.9)), _unit((63.0, 62.1, 66.7)), "cifar10",
                "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "c58f30108f718f92721af3b95e74349a"),
    DatasetInfo("cifar100", 100, 32, _unit((129.3, 124.1, 112.4)), _unit((68.2, 65.4, 70.4)), "cifar100",
                "cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                "eb9058c3a382ffc7106e4002c42a8d85"),
    DatasetInfo("ImageNet16-120", 120, 16, _unit((122.68, 116.66, 104.01)), _unit((63.22, 61.26, 65.09)),
                "imagenet16", "ImageNet16"),
):
    DATASETS.register(_info.name, _info)


def dataset_info(name: str) -> DatasetInfo:
    """The facts of data set `name`; UsageError naming the valid ones otherwise."""
    return DATASETS.get(name)
