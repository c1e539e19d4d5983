"""``mmzoo.fit`` on your own data: OpenMoji groups (image + annotation/tags -> 11 groups), shared hash split.

Prints test accuracy and wall time for: ``mmzoo.fit`` with ``--time-budget``
(KerasTuner search over fusion, width, learning rate and dropout; every
trial stops at the budget), ``mmzoo.fit`` with concat fusion and no budget
(early stopping on validation), and the text-only and image-only baselines, all on the same
split (the shared task's SHA-256 hash split: 1,676 train, 397 test; the
validation split is a stratified 10% of train). The reference point from the
issue: AutoKeras reached 0.527 in 354 s on this task.

Usage::

    python benchmarks/own_data.py [--data-dir ../shared/data] [--time-budget 60] [--seeds 1]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--time-budget", type=float, default=60.0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()

    import platform

    import numpy as np

    import mmzoo

    manifests = mmzoo.datasets.openmoji_manifests(args.data_dir)
    columns = {"image": "image", "annotation": "text", "tags": "text"}
    runs = [
        ("mmzoo fit, time budget", dict(time_budget=args.time_budget)),
        ("mmzoo fit, concat, no budget", dict(fusion="concat")),
        ("text only", dict(modalities=("text",))),
        ("image only", dict(modalities=("image",))),
    ]
    rows = []
    for name, options in runs:
        accuracies, seconds, chosen = [], [], []
        for seed in range(args.seeds):
            start = time.perf_counter()
            result = mmzoo.fit(manifests["train"], label="group", columns=columns, test=manifests["test"],
                               epochs=args.epochs, seed=seed, verbose=0, **options)
            seconds.append(time.perf_counter() - start)
            accuracies.append(result.test["accuracy"])
            chosen.append(result.fusion if len(result.plan.features) > 1 else "-")
            print(f"{name} seed {seed}: test accuracy {accuracies[-1]:.3f} in {seconds[-1]:.0f} s "
                  f"(fusion {chosen[-1]}, {len(result.trials)} trials)", flush=True)
        rows.append((name, np.mean(accuracies), min(accuracies), max(accuracies), np.mean(seconds), chosen))
    print(f"\nOpenMoji groups, {len(manifests['train'])} train / {len(manifests['test'])} test, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print("| run | test accuracy (mean) | min-max | wall s | fusion |")
    print("|---|---|---|---|---|")
    for name, mean, low, high, secs, chosen in rows:
        print(f"| {name} | {mean:.3f} | {low:.3f}-{high:.3f} | {secs:.0f} | {', '.join(sorted(set(chosen)))} |")
    print("| AutoKeras (from the issue) | 0.527 | - | 354 | - |")
    best_single = max(r[1] for r in rows if r[0] in ("text only", "image only"))
    best_fused = max(r[1] for r in rows if r[0].startswith("mmzoo fit"))  # both are fused models
    print(f"\nbest fused - best single modality: {100 * (best_fused - best_single):+.1f} points")


if __name__ == "__main__":
    main()
