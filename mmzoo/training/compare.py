"""``mmzoo.compare``: what each modality and each fusion is worth, on one split, over several seeds.

Every single input alone and every requested fusion of all inputs is trained
on the same train/validation split (the validation split selects the epoch),
with ``seeds`` seeds each, and scored on the test split (the validation split
when no test split is given). The result is one table (mean, min-max per
model), written as JSON, Markdown and a bar plot.

Example::

    table = mmzoo.compare("emoji.jsonl", label="group", test="emoji_test.jsonl",
                          columns={"images/{hexcode}.png": "image", "annotation": "text"},
                          seeds=3, output_dir="runs/compare")
    print(table.markdown())
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

DEFAULT_FUSIONS = ("concat", "attention", "ensemble")


@dataclasses.dataclass
class Comparison:
    """The result of ``compare``.

    Attributes:
        metric: The score compared (``"accuracy"``, ``"macro_f1"`` or ``"rmse"``).
        split: ``"test"`` or ``"valid"``: where the scores were measured.
        rows: One dict per model: ``name``, ``inputs``, ``fusion``, ``scores``
            (one per seed), ``mean``, ``min``, ``max``.
        paths: Written files (``json``, ``markdown``, ``plot``) when ``output_dir`` was given.
    """

    metric: str
    split: str
    rows: list
    paths: dict = dataclasses.field(default_factory=dict)

    def best(self, fused=None):
        """The best row (``fused=True``: among fusions, ``False``: among single inputs)."""
        rows = [r for r in self.rows if fused is None or (r["fusion"] is not None) == fused]
        key = (lambda r: -r["mean"]) if self.metric == "rmse" else (lambda r: r["mean"])
        return max(rows, key=key)

    def markdown(self):
        """The table as Markdown."""
        lines = [f"| model | inputs | {self.metric} ({self.split}, mean) | min-max | seeds |", "|---|---|---|---|---|"]
        for r in self.rows:
            lines.append(f"| {r['name']} | {', '.join(r['inputs'])} | {r['mean']:.3f} | {r['min']:.3f}-{r['max']:.3f} "
                         f"| {len(r['scores'])} |")
        return "\n".join(lines)


def compare(train, label, columns="auto", valid=None, valid_fraction=0.1, group=None, test=None,
            fusions=DEFAULT_FUSIONS, singles=True, seeds=3, epochs=30, batch_size=32, learning_rate=1e-3, dropout=0.3,
            hidden=(128,), patience=5, image_size=None, image_encoder="auto", output_dir=None, seed=0, verbose=0):
    """Trains every single input and each fusion on one split with several seeds; returns the table.

    Args:
        train: Training data (a manifest path, records or a DataFrame; see ``mmzoo.fit``).
        label: The label column.
        columns: Column kinds (see ``mmzoo.fit``).
        valid: Validation data; default a stratified ``valid_fraction`` of train (one split for all runs).
        valid_fraction: Held-out fraction when ``valid`` is None.
        group: Hold whole groups of this column out as validation (see ``mmzoo.fit``).
        test: Test data (scores are measured here when given).
        fusions: Fusion kinds to try on all inputs.
        singles: Also train each modality alone (all the inputs of that kind: a row's text columns together).
        seeds: Seeds per model (``seed``, ``seed + 1``, ...).
        epochs: Most epochs per run (early stopping on validation loss).
        batch_size: Examples per batch.
        learning_rate: Adam learning rate.
        dropout: Dropout after the hidden layers.
        hidden: Dense widths after the fusion.
        patience: Early-stopping patience.
        image_size: Largest image side fed to the model (see ``mmzoo.fit``).
        image_encoder: ``"auto"``, ``"efficientnet_lite0"``, ``"mobilenet_v2"`` or ``"cnn"`` (see ``mmzoo.fit``).
        output_dir: Folder (local or ``gs://``) for ``compare.json``, ``compare.md`` and ``compare.png``.
        seed: First seed (also the split's seed).
        verbose: 1 prints each run's score.

    Returns:
        A ``Comparison``.

    Raises:
        mmzoo.training.fit.FitError: For bad data or arguments, before training.
    """
    from mmzoo import _validation as check  # noqa: PLC0415
    from mmzoo.training import fit as fit_lib  # noqa: PLC0415

    seeds = check.positive_int("seeds", seeds)
    for kind in fusions:
        if kind not in fit_lib.FUSION_CHOICES:
            raise fit_lib.FitError(f"fusions: unknown kind {kind!r}; expected {', '.join(fit_lib.FUSION_CHOICES)}")
    if output_dir is not None:
        fit_lib._check_writable(output_dir)
    manifest, _ = fit_lib._load(train, "train")
    if group is not None:
        columns = fit_lib._check_group(group, manifest, label, columns, valid, None)
    plan = fit_lib.plan_data(manifest, label, columns, verbose=bool(verbose), image_size=image_size,
                             image_encoder=image_encoder)
    if valid is None:
        train_m, valid_m = fit_lib._split_train_valid(manifest, plan, valid_fraction, seed, group)
    else:
        train_m, valid_m = manifest, fit_lib._load(valid, "valid")[0]
    test_m = fit_lib._load(test, "test")[0] if test is not None else None
    for name, m in (("train", train_m), ("valid", valid_m), ("test", test_m)):
        if m is not None:
            fit_lib._check_rows(plan, m, name, "raise")
    metric = {"regression": "rmse", "multilabel": "macro_f1"}.get(plan.task, "accuracy")

    configs = []
    by_modality = {}
    for name in plan.features:
        by_modality.setdefault(plan.modalities[name], []).append(name)
    if singles or len(plan.features) == 1:
        # Each modality alone; a modality of several inputs (a row's text columns) is one row, named by its kind.
        configs += [(names[0] if len(names) == 1 else kind, tuple(names), None) for kind, names in by_modality.items()]
    if len(plan.features) > 1:
        configs += [(f"fusion: {kind}", tuple(plan.features), kind) for kind in fusions]
    rows = []
    if plan.encoders:
        fit_lib._encoded_inputs(plan)  # made before the sub-plans copy it: each split is encoded once for all runs
    for name, inputs, kind in configs:
        sub = dataclasses.replace(plan, features={k: plan.features[k] for k in inputs},
                                  modalities={k: plan.modalities[k] for k in inputs})
        scores = []
        for s in range(seed, seed + seeds):
            net, _, valid_report, _ = fit_lib._train_once(
                sub, train_m, valid_m, fusion=kind or "concat", model="auto", seed=s, epochs=epochs,
                batch_size=batch_size, learning_rate=learning_rate, dropout=dropout, hidden=tuple(hidden), width=1.0,
                patience=patience, callbacks=(), tensorboard=None, verbose=0, on_error="raise",
            )
            report = valid_report
            if test_m is not None:
                report = fit_lib.evaluate_model(net, fit_lib._datasets(sub, test_m, batch_size, s, False, "raise"), sub)
            scores.append(float(report[metric]))
            if verbose:
                print(f"{name} seed {s}: {metric} {scores[-1]:.4f}")
        rows.append({"name": name, "inputs": list(inputs), "fusion": kind, "scores": scores,
                     "mean": float(np.mean(scores)), "min": float(np.min(scores)), "max": float(np.max(scores))})
    result = Comparison(metric, "test" if test_m is not None else "valid", rows)
    if output_dir is not None:
        result.paths = _write(result, output_dir)
    return result


def _write(result, output_dir):
    import io  # noqa: PLC0415

    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from mmzoo import _gfile  # noqa: PLC0415

    paths = {"json": os.path.join(output_dir, "compare.json"), "markdown": os.path.join(output_dir, "compare.md"),
             "plot": os.path.join(output_dir, "compare.png")}
    _gfile.write_text(paths["json"], json.dumps({"metric": result.metric, "split": result.split, "rows": result.rows},
                                                indent=2))
    _gfile.write_text(paths["markdown"], result.markdown() + "\n")
    names = [r["name"] for r in result.rows]
    means = np.array([r["mean"] for r in result.rows])
    errors = np.array([[r["mean"] - r["min"] for r in result.rows], [r["max"] - r["mean"] for r in result.rows]])
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(names)), 3.6))
    colors = ["tab:gray" if r["fusion"] is None else "tab:blue" for r in result.rows]
    ax.bar(range(len(names)), means, yerr=errors, color=colors, capsize=4)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel(f"{result.metric} ({result.split})")
    ax.set_title(f"Single inputs (grey) vs fusions (blue): mean and min-max over {len(result.rows[0]['scores'])} seeds")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    _gfile.write_bytes(paths["plot"], png.getvalue())
    return paths
