"""Builds the embedded AV-digits dataset from ``../shared/data``.

Usage:
    python scripts/build_av_digits.py [--data ../shared/data] [--out mmzoo/datasets/embedded/av_digits.npz]

Keeps FSDD test recordings (index 0-4) and train recordings with index 5-24,
pairs each with an MNIST image of the same digit and stores the audio as
8-bit mu-law so the file stays under 5 MB. See ``mmzoo/datasets/av_digits_recipe.py``
for the full recipe.
"""

import argparse
import os

import numpy as np

from mmzoo.datasets import av_digits_recipe as av_digits


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MMZOO_DATA", "../shared/data"))
    parser.add_argument("--out", default=av_digits._EMBEDDED_PATH)
    args = parser.parse_args()
    arrays = av_digits.build_arrays(
        os.path.join(args.data, "fsdd", "recordings"),
        os.path.join(args.data, "mnist"),
        train_indices=range(5, 25),
    )
    for split in ("train", "test"):
        arrays[f"{split}_audio"] = av_digits.mulaw_encode(arrays[f"{split}_audio"])
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    sizes = {k: v.shape for k, v in arrays.items()}
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB): {sizes}")


if __name__ == "__main__":
    main()
