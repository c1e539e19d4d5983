"""Fusion that pays: every single modality, every fusion and the anti-imbalance training, on the same splits.

Prints one markdown table per task (test accuracy, mean and min-max over the
seeds) and writes a bar plot next to each table:

* ``av_digits``: the embedded AV-digits (degraded image + audio), the zoo's
  encoders (``av_digits_concat``: flattened image CNN and log-mel CNN,
  ``Dense(64)``), each fusion, concat with modality dropout / auxiliary
  losses / OGM-GE, and the modality-dropout model with each modality absent
  (all-zeros input) next to the dedicated single-modality model; runs ending
  ``@wide_audio`` use the audio CNN at filters (32, 64), as ``av_digits_robust``
  does (the other AV-digits models have (16, 32)); runs ending ``@time_stretch``
  the default audio CNN with a train-time tempo change of up to 20%
  (``time_stretch=0.2``); variants combine with ``+`` (``audio@time_stretch+speaker_batches``).
* ``openmoji``: OpenMoji groups (image + annotation/tags text -> 11 groups;
  the shared task's hash split) through ``mmzoo.fit`` (validation-selected
  epoch), single modalities, fusions and ``fusion="auto"``; images go through
  ``fit``'s default encoder (the bundled pretrained EfficientNet-Lite0, frozen,
  224 px), or with a run ending ``@mobilenet_v2`` through the bundled
  MobileNetV2, or ending ``@cnn`` (``image@cnn``, ``auto@cnn``) through the CNN
  trained from scratch at 64 px.
* ``loso``: full-size AV-digits, leave-one-speaker-out (5 FSDD speakers):
  audio only, image only, concat and the uni-modal ensemble (each branch
  trained alone, its late-fusion weights fit on out-of-group logits of the
  *training speakers*: ``mmzoo.training.ensemble.out_of_group_logits``),
  and that ensemble bagged with its cross-fitted models
  (``ensemble.bag``: the branch logits averaged, no extra training), with
  each ensemble's branches alone as single-modality rows (the plain
  ensemble's branches *are* single-modality models; the bagged ones are
  their 5-model bags), mean over the held-out speakers, next to the
  within-speaker (standard split) accuracy. Runs ending ``@adabn`` train as
  usual, runs ending ``@speaker_batches`` with every batch from one speaker
  (``mmzoo.data.group_batches``); both also get a row "adapted to each test
  speaker": BatchNorm statistics re-estimated on that speaker's unlabeled
  test inputs (``mmzoo.training.adapt.adapt_batch_norm``), then restored.
  Runs ending ``@cross_modal`` also train an image model (the teacher) and
  report the audio model on half of each test speaker's recordings (odd
  recording index) before and after ``mmzoo.training.adapt.cross_modal_adapt``
  on the other half: the image model's confident labels of those unlabeled
  pairs, the training data replayed; no test label is used, and no
  recording it is scored on. ``@cross_modal`` runs its two rounds (the
  second labels with image and adapted audio together), ``@cross_modal_1``
  one round (the image model alone labels).

Usage::

    python benchmarks/fusion.py --task av_digits --seeds 3 [--runs image,audio,concat,...] [--plot-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

AV_RUNS = ("image", "audio", "concat", "late", "attention", "gated", "low_rank", "concat+modality_dropout",
           "concat+modality_dropout_0.5", "concat+modality_dropout_0.5+auxiliary", "concat+auxiliary",
           "concat+ogm_ge", "audio@wide_audio", "concat+modality_dropout_0.5+auxiliary@wide_audio")
MOJI_RUNS = ("text", "image", "concat", "attention", "ensemble", "gated", "concat+modality_dropout",
             "concat+auxiliary", "auto")
LOSO_RUNS = ("audio", "image", "concat", "ensemble")


def _av_model(run, seed, image_shape=(28, 28, 1), num_samples=4000, sampling_rate=8000):
    import keras

    import mmzoo
    from mmzoo import branches, fusion, heads
    from mmzoo.zoo.av_digits import AUDIO_FILTERS

    keras.utils.set_random_seed(seed)
    # "@wide_audio": the audio CNN at (32, 64), as av_digits_robust; "@time_stretch": train-time tempo change +-20%.
    run, _, variant = run.partition("@")
    variants = set(variant.split("+"))
    audio_filters = (32, 64) if "wide_audio" in variants else AUDIO_FILTERS
    time_stretch = 0.2 if "time_stretch" in variants else 0.0
    kind, _, option = run.partition("+")
    parts = []
    if kind != "audio":
        parts.append(branches.image_cnn(image_shape, filters=(32, 64), reduction="flatten", name="image"))
    if kind != "image":
        parts.append(branches.audio_spectrogram_cnn(num_samples, sampling_rate, filters=audio_filters,
                                                    reduction="flatten", name="audio", time_stretch=time_stretch))
    layer = {"late": lambda: fusion.late("mean"), "ensemble": lambda: fusion.late("weighted"),
             "attention": lambda: fusion.attention(units=128),
             "gated": lambda: fusion.gated(units=128), "low_rank": lambda: fusion.low_rank(units=128)}.get(
        kind, fusion.concat)()
    options = {"modality_dropout": {"modality_dropout": 0.3},
               "modality_dropout_0.5": {"modality_dropout": 0.5},
               "modality_dropout_0.5+auxiliary": {"modality_dropout": 0.5, "auxiliary_loss_weight": 0.5},
               "auxiliary": {"auxiliary_loss_weight": 0.5},
               "ogm_ge": {"auxiliary_loss_weight": 0.0, "gradient_modulation": "ogm_ge"}}.get(option, {})
    return mmzoo.compose(parts, fusion=layer, head=heads.multiclass(10), hidden=(64,), dropout=0.2, **options)


def _accuracy(model, x, y):
    import numpy as np

    return float((model.predict(x, batch_size=256, verbose=0).argmax(-1) == np.asarray(y).ravel()).mean())


def _branch_accuracies(model, x, y):
    """``{input: accuracy}`` of a late-fusion model's branches alone (argmax of each ``{input}_logits``)."""
    import numpy as np
    import tensorflow as tf

    from mmzoo.training import ensemble

    dataset = tf.data.Dataset.from_tensor_slices((x, np.asarray(y).ravel())).batch(256)
    logits, targets = ensemble.branch_logits(model, dataset)
    return {n: float((z.argmax(-1) == targets).mean()) for n, z in logits.items()}


def _arrays(ds):
    import numpy as np

    xs, ys = [], []
    for x, y in ds:
        xs.append({k: v.numpy() for k, v in x.items()})
        ys.append(y.numpy())
    return {k: np.concatenate([b[k] for b in xs]) for k in xs[0]}, np.concatenate(ys)


def _inputs_of(model, x):
    return {k: v for k, v in x.items() if k in model.input}


def run_av_digits(runs, seeds, epochs):
    import numpy as np

    import mmzoo

    train_ds, test_ds = mmzoo.datasets.av_digits()
    x_test, y_test = _arrays(test_ds)
    results = {}
    for run in runs:
        for seed in seeds:
            model = _av_model(run, seed)
            start = time.perf_counter()
            model.fit(train_ds.map(lambda x, y, m=model: (_inputs_of(m, x), y)), epochs=epochs, verbose=0)
            seconds = time.perf_counter() - start
            results.setdefault(run, []).append(_accuracy(model, _inputs_of(model, x_test), y_test))
            line = f"{run} seed {seed}: {results[run][-1]:.3f} ({seconds:.0f} s)"
            if "modality_dropout" in run:
                for absent in ("image", "audio"):
                    x = {k: (np.zeros_like(v) if k == absent else v) for k, v in x_test.items()}
                    results.setdefault(f"{run}, {absent} absent", []).append(_accuracy(model, x, y_test))
                    line += f"; {absent} absent {results[f'{run}, {absent} absent'][-1]:.3f}"
            if run == "attention":
                weights = mmzoo.fusion.attention_weights(model, x_test)
                line += f"; mean weights image/audio {weights.mean(0).round(2).tolist()}"
            print(line, flush=True)
    return results


def run_openmoji(runs, seeds, epochs, data_dir=None):
    import mmzoo

    manifests = mmzoo.datasets.openmoji_manifests(data_dir)
    columns = {"image": "image", "annotation": "text", "tags": "text"}
    results = {}
    for run in runs:
        setting, _, encoder = run.partition("@")
        kind, _, option = setting.partition("+")
        options = {"modality_dropout": {"modality_dropout": 0.3},
                   "auxiliary": {"auxiliary_loss_weight": 0.5}}.get(option, {})
        if encoder:
            options["image_encoder"] = encoder
        if kind in ("text", "image"):
            options["modalities"] = (kind,)
        else:
            options["fusion"] = kind
        for seed in seeds:
            start = time.perf_counter()
            result = mmzoo.fit(manifests["train"], label="group", columns=columns, test=manifests["test"],
                               epochs=epochs, seed=seed, verbose=0, **options)
            results.setdefault(run, []).append(result.test["accuracy"])
            print(f"{run} seed {seed}: {result.test['accuracy']:.3f} (valid {result.valid['accuracy']:.3f}, fusion "
                  f"{result.fusion}, {time.perf_counter() - start:.0f} s)", flush=True)
    return results


def _fit_loso(run, seed, epochs, x_train, y_train, groups, speakers):
    """One LOSO-task model, and ``{name: model}`` of its variants.

    ``ensemble``: branches alone, weights on out-of-group logits; its variant
    ``ensemble, bagged`` averages the branch logits of the final model and of
    the cross-fitted ones (``ensemble.bag``: no extra training).
    ``...@speaker_batches``: every training batch holds one speaker
    (``mmzoo.data.group_batches``).
    """
    import numpy as np
    import tensorflow as tf

    from mmzoo import data
    from mmzoo.training import ensemble

    model = _av_model(run, seed)
    x_all, x_train = x_train, _inputs_of(model, x_train)
    variants = run.partition("@")[2].split("+")
    context = {}
    if _cross_modal_rounds(run):  # the teacher: an image model, trained as the "image" run is
        teacher = _av_model("image", seed)
        teacher.fit(_inputs_of(teacher, x_all), y_train, batch_size=32, epochs=epochs, verbose=0)
        context = {"teacher": teacher, "labeled": (x_train, y_train), "rebuild": lambda: _av_model(run, seed),
                   "rounds": _cross_modal_rounds(run)}
    if "speaker_batches" in variants:
        model.fit(data.group_batches(x_train, y_train, speakers, batch_size=32, seed=seed), epochs=epochs, verbose=0)
        return {run: model}, "", context
    if run.partition("@")[0] != "ensemble":
        model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=0)
        return {run: model}, "", context
    train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(y_train), seed=seed).batch(32)
    ensemble.fit_branches(model, train_ds, None, epochs)
    logits, targets, members = ensemble.out_of_group_logits(lambda: _av_model(run, seed), x_train, y_train, groups,
                                                            epochs, seed=seed, return_models=True)
    weights = ensemble.fit_weights_to_logits(model, logits, targets)
    note = f" (weights {weights}, fit on {len(np.unique(groups))} held-out groups)"
    return {run: model, f"{run}, bagged": ensemble.bag(model, members)}, note, context


def _adapted_accuracy(model, x, y, speakers):
    """Accuracy with the BatchNorm statistics re-estimated on each test speaker's inputs (AdaBN), then restored."""
    import numpy as np

    from mmzoo.training.adapt import adapt_batch_norm, batch_norm_layers

    saved = [(v, v.numpy()) for layer in batch_norm_layers(model) for v in (layer.moving_mean, layer.moving_variance)]
    correct = 0
    for speaker in np.unique(speakers):
        rows = {k: v[speakers == speaker] for k, v in x.items()}
        adapt_batch_norm(model, rows)
        correct += int((model.predict(rows, batch_size=256, verbose=0).argmax(-1) == y[speakers == speaker]).sum())
        for variable, value in saved:
            variable.assign(value)
    return correct / len(y)


def _cross_modal_rounds(run):
    """``cross_modal_adapt``'s rounds for a run: 2 for ``@cross_modal``, 1 for ``@cross_modal_1``, else 0."""
    variants = run.partition("@")[2].split("+")
    return 2 if "cross_modal" in variants else 1 if "cross_modal_1" in variants else 0


def _cross_modal_accuracies(model, context, x, y, speakers, indices, seed):
    """Accuracy on each test speaker's odd-index recordings before and after cross-modal adaptation on the even ones."""
    import numpy as np

    from mmzoo.training.adapt import cross_modal_adapt

    before = after = selected = 0
    scored = indices % 2 == 1
    for speaker in np.unique(speakers):
        own = speakers == speaker
        adapt_rows, score_rows = own & ~scored, own & scored
        student = context["rebuild"]()
        student.set_weights(model.get_weights())
        score_x = {k: v[score_rows] for k, v in _inputs_of(student, x).items()}
        before += int((student.predict(score_x, batch_size=256, verbose=0).argmax(-1) == y[score_rows]).sum())
        report = cross_modal_adapt(student, context["teacher"], {k: v[adapt_rows] for k, v in x.items()},
                                   labeled=context["labeled"], rounds=context["rounds"], seed=seed)
        selected += report["selected"]
        after += int((student.predict(score_x, batch_size=256, verbose=0).argmax(-1) == y[score_rows]).sum())
    total = int(scored.sum())
    return before / total, after / total, selected / (len(y) - total)


def _loso_accuracies(models, x, y, speakers, indices=None, context=None, seed=0):
    """Test accuracy of each model; for an ensemble, also of each of its branches alone (single-modality rows).

    Runs ending ``@adabn`` or ``@speaker_batches`` also get the accuracy with each test speaker's own
    BatchNorm statistics (``mmzoo.training.adapt.adapt_batch_norm`` on that speaker's unlabeled inputs).
    """
    out = {}
    for name, model in models.items():
        out[name] = _accuracy(model, _inputs_of(model, x), y)
        if name.startswith("ensemble"):
            for branch, accuracy in _branch_accuracies(model, _inputs_of(model, x), y).items():
                out[f"{branch} ({name}'s branch alone)"] = accuracy
        if {"adabn", "speaker_batches"} & set(name.partition("@")[2].split("+")):
            out[f"{name}, adapted to each test speaker"] = _adapted_accuracy(model, _inputs_of(model, x), y,
                                                                             speakers)
        if _cross_modal_rounds(name):
            before, after, share = _cross_modal_accuracies(model, context, x, y, speakers, indices, seed)
            out[f"{name}, odd-index half"] = before
            out[f"{name}, odd-index half, after cross-modal adaptation on the even half"] = after
            print(f"  cross-modal adaptation: {share:.0%} of the even-index recordings pseudo-labelled", flush=True)
    return out


def _recording_indices(ids):
    """The FSDD take of each recording name ``{digit}_{speaker}_{index}.wav``."""
    import numpy as np

    return np.array([int(name.rsplit("_", 1)[1].split(".")[0]) for name in ids])


def run_loso(runs, seeds, epochs, data_dir=None):
    import statistics as stats

    import numpy as np

    from mmzoo.datasets import av_digits_full

    results = {}
    for seed in seeds:
        for speaker, arrays in av_digits_full.speaker_folds(data_dir):
            (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
            # The ensemble's weights are fit on held-out *training speakers*: a new voice is what the test holds.
            speakers = np.array([name.split("_")[1] for name in arrays["train_ids"]])
            test_speakers = np.array([name.split("_")[1] for name in arrays["test_ids"]])
            test_indices = _recording_indices(arrays["test_ids"])
            for run in runs:
                models, note, context = _fit_loso(run, seed, epochs, x_train, y_train, speakers, speakers)
                for name, accuracy in _loso_accuracies(models, x_test, y_test, test_speakers, test_indices, context,
                                                       seed).items():
                    results.setdefault((name, seed), []).append(accuracy)
                    print(f"{name} seed {seed}, held-out speaker {speaker}: {accuracy:.3f}{note}", flush=True)
        standard = av_digits_full.load_full_arrays(data_dir)
        # Within speakers, the ensemble's weights are fit on 4 random folds (every speaker on both sides, as in test).
        folds = np.random.RandomState(seed).permutation(len(standard["train"][1])) % 4
        speakers, test_speakers = (np.array([name.split("_")[1] for name in standard[f"{side}_ids"]])
                                   for side in ("train", "test"))
        for run in runs:
            models, note, context = _fit_loso(run, seed, epochs, *standard["train"], folds, speakers)
            for name, accuracy in _loso_accuracies(models, *standard["test"], test_speakers,
                                                   _recording_indices(standard["test_ids"]), context, seed).items():
                results.setdefault((f"{name} (within speaker)", seed), []).append(accuracy)
                print(f"{name} seed {seed}, within speaker: {accuracy:.3f}{note}", flush=True)
    table = {}
    for (run, _seed), values in results.items():
        table.setdefault(run if "within" in run else f"{run} (leave one speaker out)", []).append(stats.mean(values))
    return table


def print_table(title, results, plot_path=None):
    print(f"\n{title} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)")
    print("| run | test accuracy (mean) | min-max | seeds |")
    print("|---|---|---|---|")
    for run, values in results.items():
        print(f"| {run} | {statistics.mean(values):.3f} | {min(values):.3f}-{max(values):.3f} | {len(values)} |")
    # Held-out rows only (LOSO: the unseen-speaker rows), named by run.
    held_out = {r.replace(" (leave one speaker out)", ""): statistics.mean(v) for r, v in results.items()
                if "absent" not in r and "within" not in r}
    # Single-modality rows: "audio", "audio@wide_audio", "image (ensemble's branch alone)", ...
    singles = {r: v for r, v in held_out.items() if r.split("@")[0].split(" ")[0] in ("image", "audio", "text")}
    fused = {r: v for r, v in held_out.items() if r not in singles}
    if singles and fused:
        best_single = max(singles, key=singles.get)
        best_fused = max(fused, key=fused.get)
        print(f"\nbest fused ({best_fused}) - best single modality ({best_single}): "
              f"{100 * (fused[best_fused] - singles[best_single]):+.1f} points")
    if plot_path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(results)
        means = [statistics.mean(results[n]) for n in names]
        errors = [[m - min(results[n]) for n, m in zip(names, means)],
                  [max(results[n]) - m for n, m in zip(names, means)]]
        fig, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1.2))
        ax.barh(names, means, xerr=errors, color="#4c72b0")
        ax.invert_yaxis()
        ax.set_xlabel("test accuracy (mean, min-max)")
        ax.set_xlim(0, 1)
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(plot_path, dpi=100)
        plt.close(fig)
        print(f"plot: {plot_path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("av_digits", "openmoji", "loso"), default="av_digits")
    parser.add_argument("--runs", default=None, help="comma-separated subset of the task's runs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--plot-dir", default=None)
    args = parser.parse_args()
    defaults = {"av_digits": AV_RUNS, "openmoji": MOJI_RUNS, "loso": LOSO_RUNS}[args.task]
    runs = tuple(r for r in args.runs.split(",") if r) if args.runs else defaults
    seeds = range(args.seeds)
    if args.task == "av_digits":
        results = run_av_digits(runs, seeds, args.epochs)
    elif args.task == "openmoji":
        results = run_openmoji(runs, seeds, args.epochs, args.data_dir)
    else:
        results = run_loso(runs, seeds, args.epochs, args.data_dir)
    if args.plot_dir:
        os.makedirs(args.plot_dir, exist_ok=True)
    plot = os.path.join(args.plot_dir, f"fusion_{args.task}.png") if args.plot_dir else None
    print_table(f"{args.task}: {args.epochs} epochs, seeds 0-{args.seeds - 1}", results, plot)


if __name__ == "__main__":
    main()
