"""Level-robust audio: within-speaker vs leave-one-speaker-out accuracy, with and without level normalisation.

Usage: python benchmarks/level_robust_audio.py [--epochs 10] [--seeds 0] [--speakers george ...]
           [--runs none none+gain rms rms+gain peak peak+gain] [--data-dir ../shared/data]

Trains the audio-only AV-digits model (``av_digits_concat(modalities=("audio",))``)
on the full-size AV-digits audio, each run on the degraded train recordings
plus their clean copies (as ``mmzoo.datasets.av_digits`` does), and reports
the test accuracy on degraded recordings:

* ``within``: the official split (FSDD index 0-4 test, 5-49 train; every
  speaker on both sides); ``within, clean``: the same test recordings
  without the degradation (what a user serving clean files sees);
* ``LOSO``: leave-one-speaker-out (``speaker_folds``): trained on 4
  speakers, tested on all recordings of the 5th; the mean over the held-out
  speakers;
* the same test recordings played 20 dB quieter (``-20 dB``: every test
  waveform times 0.1, as from a quieter microphone, fed to the model's
  tensor input).

Runs: ``none`` is the waveform as given (``level=None``: Keras's log-mel,
clipped 80 dB below the batch's loudest value), ``rms`` / ``peak`` the
per-utterance RMS / peak normalisation (``level="rms"`` / ``"peak"``, with
the fixed -60 dB log-mel floor that comes with a level); ``+gain`` adds a
random gain of +-20 dB per training example
(``audio_augmentation(gain_db=20)``; with a level it changes nothing the
model sees but the draw order, a check of the invariance). One training
takes about 80 s on 2 CPU cores: 6 per run and seed (the official split and
5 folds).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import mmzoo
from mmzoo.data.augment import apply_augmentation, audio_augmentation
from mmzoo.datasets.av_digits_full import load_full_arrays, speaker_folds

RUNS = {
    "none": {"level": None, "gain_db": 0.0},
    "none+gain": {"level": None, "gain_db": 20.0},
    "rms": {"level": "rms", "gain_db": 0.0},
    "rms+gain": {"level": "rms", "gain_db": 20.0},
    "peak": {"level": "peak", "gain_db": 0.0},
    "peak+gain": {"level": "peak", "gain_db": 20.0},
}
QUIETER_DB = -20.0


def _train_arrays(degraded, clean):
    """Degraded train recordings plus their clean copies (audio only)."""
    return np.concatenate([degraded["train"][0]["audio"], clean["train"][0]["audio"]]), np.concatenate(
        [degraded["train"][1], clean["train"][1]]
    )


def train_and_test(train, tests, level, gain_db, epochs, seed):
    """Trains one audio-only model; returns its accuracy on each ``(audio, labels)`` test set, as given and quieter."""
    keras.utils.set_random_seed(seed)
    audio, labels = train
    ds = tf.data.Dataset.from_tensor_slices(({"audio": audio}, labels)).shuffle(len(labels), seed=seed)
    if gain_db:
        ds = apply_augmentation(ds, {"audio": audio_augmentation(gain_db=gain_db)}, seed=seed)
    ds = ds.batch(32).prefetch(tf.data.AUTOTUNE)
    model = mmzoo.build("av_digits_concat", modalities=("audio",), level=level)
    model.fit(ds, epochs=epochs, verbose=0, shuffle=False)  # shuffled above
    out = []
    for test_audio, test_labels in tests:
        for gain in (1.0, 10 ** (QUIETER_DB / 20)):
            probs = model.predict({"audio": test_audio * np.float32(gain)}, batch_size=250, verbose=0)
            out.append(float(np.mean(np.argmax(probs, -1) == test_labels)))
    return out


def _spread(values):
    return f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})" if len(values) > 1 else f"{values[0]:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--speakers", nargs="+", default=None, help="held-out speakers (default: all 5)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    degraded, clean = load_full_arrays(args.data_dir), load_full_arrays(args.data_dir, degraded=False)
    within_tests = [(degraded["test"][0]["audio"], degraded["test"][1]), (clean["test"][0]["audio"], clean["test"][1])]
    clean_folds = dict(speaker_folds(args.data_dir, degraded=False, speakers=args.speakers))
    folds = {
        speaker: (_train_arrays(fold, clean_folds[speaker]), [(fold["test"][0]["audio"], fold["test"][1])])
        for speaker, fold in speaker_folds(args.data_dir, speakers=args.speakers)
    }

    print(f"audio-only av_digits_concat, {args.epochs} epochs, seeds {args.seeds}; test accuracy as recorded / "
          f"{QUIETER_DB:+.0f} dB", flush=True)
    rows = {}
    for run in args.runs:
        columns = {"within": [], "within_quiet": [], "within_clean": [], "loso": [], "loso_quiet": []}
        for seed in args.seeds:
            start = time.time()
            within, within_quiet, within_clean, _ = train_and_test(
                _train_arrays(degraded, clean), within_tests, epochs=args.epochs, seed=seed, **RUNS[run]
            )
            per_speaker = {
                speaker: train_and_test(train, tests, epochs=args.epochs, seed=seed, **RUNS[run])
                for speaker, (train, tests) in folds.items()
            }
            for key, value in (("within", within), ("within_quiet", within_quiet), ("within_clean", within_clean),
                               ("loso", np.mean([a[0] for a in per_speaker.values()])),
                               ("loso_quiet", np.mean([a[1] for a in per_speaker.values()]))):
                columns[key].append(float(value))
            speakers = ", ".join(f"{s} {a[0]:.3f}/{a[1]:.3f}" for s, a in per_speaker.items())
            print(f"{run:10s} seed {seed}: within {within:.3f}/{within_quiet:.3f} (clean {within_clean:.3f})  "
                  f"LOSO {columns['loso'][-1]:.3f}/{columns['loso_quiet'][-1]:.3f} [{speakers}]  "
                  f"{time.time() - start:.0f} s", flush=True)
        rows[run] = columns

    print()
    print(f"Mean over seeds {args.seeds} (min-max); LOSO: mean over {len(folds)} held-out speakers.")
    print()
    print(f"| run | within-speaker | within, {QUIETER_DB:+.0f} dB | within, clean | leave-one-speaker-out "
          f"| LOSO, {QUIETER_DB:+.0f} dB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for run, columns in rows.items():
        print(f"| {run} | " + " | ".join(_spread(values) for values in columns.values()) + " |")


if __name__ == "__main__":
    main()
