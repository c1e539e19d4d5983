"""Fixtures shared by the ``mmzoo.fit`` tests: small real manifests made from the shared data."""

import numpy as np
import pytest

from mmzoo.datasets import av_digits_recipe


@pytest.fixture(scope="module")
def av_dir(shared_data, tmp_path_factory):
    """train.csv / test.csv of real MNIST PNGs paired with FSDD WAVs of the same digit (digits 0-3)."""
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("av")
    images, labels = av_digits_recipe.read_mnist(str(shared_data / "mnist"))
    recordings = shared_data / "fsdd" / "recordings"
    for split, indices in (("train", range(5, 17)), ("test", range(0, 4))):
        lines = ["image,audio,digit"]
        for digit in range(4):
            positions = np.flatnonzero(labels == digit)
            for i in indices:
                png = folder / f"{split}_{digit}_{i}.png"
                tf.io.write_file(str(png), tf.io.encode_png(images[positions[i]][..., None]))
                lines.append(f"{png.name},{recordings / f'{digit}_jackson_{i}.wav'},{digit}")
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return folder
