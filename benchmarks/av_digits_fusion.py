"""Unimodal vs fused test accuracy on the embedded AV-digits task.

Usage: python benchmarks/av_digits_fusion.py [--epochs 15] [--seeds 0 1 2]

Trains ``av_digits_concat`` with image only, audio only and both, and
``av_digits_attention`` (both), with the main job's settings, and prints the
test accuracy of each (mean and spread over seeds) and the fused gain over
the best single modality, all measured in this one run.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import mmzoo

RUNS = [
    ("image only", "av_digits_concat", {"modalities": ("image",)}),
    ("audio only", "av_digits_concat", {"modalities": ("audio",)}),
    ("image + audio, concat", "av_digits_concat", {}),
    ("image + audio, attention", "av_digits_attention", {}),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    results = {}
    for label, name, overrides in RUNS:
        accs = []
        for seed in args.seeds:
            keras.utils.set_random_seed(seed)
            train_ds, test_ds = mmzoo.datasets.av_digits(batch_size=32, seed=seed)
            model = mmzoo.build(name, **overrides)
            keep = set(model.input)

            def select(x, y, keep=keep):  # bind this run's inputs, not the loop variable's last value
                return {k: v for k, v in x.items() if k in keep}, y

            train_ds = train_ds.map(select)
            test_ds = test_ds.map(select)
            model.fit(train_ds, epochs=args.epochs, verbose=0)
            accs.append(model.evaluate(test_ds, verbose=0, return_dict=True)["accuracy"])
        results[label] = accs
        print(f"{label:28s} test accuracy {np.mean(accs):.3f} (min {min(accs):.3f}, max {max(accs):.3f}) "
              f"over seeds {args.seeds}", flush=True)
    best_single = max(np.mean(results["image only"]), np.mean(results["audio only"]))
    fused = np.mean(results["image + audio, concat"])
    print(f"fused (concat) - best single modality: {100 * (fused - best_single):+.1f} points")


if __name__ == "__main__":
    main()
