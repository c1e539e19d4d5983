"""AV-digits: an audio-visual digit task built from real MNIST and FSDD data.

Every example pairs an MNIST image of digit ``d`` with a Free Spoken Digit
Dataset (FSDD) recording of someone saying ``d``. The label is ``d``.

The recipe (shared by the embedded copy and the full-size loader):

1. **Split.** FSDD's official split: recordings with index 0-4 are test, 5-49
   are train. MNIST (the 10,000-image ``t10k`` set) is split by index parity:
   even indices feed train pairs, odd indices feed test pairs. No recording and
   no image is in both splits.
2. **Pairing.** Each recording gets one image of the same digit, drawn without
   replacement from its split's pool with a fixed seed.
3. **Audio.** Leading silence is trimmed (first 32-sample frame whose RMS
   exceeds 5% of the loudest frame, minus a 200-sample margin), the clip is
   cropped or zero-padded at the end to ``NUM_SAMPLES`` (0.5 s at 8 kHz) and
   peak-normalised to 0.9.
4. **Degradation** (applied at load time, seeded per split, so each modality
   alone is clearly worse than both together, as in AV-MNIST):

   * image: a random 12x12 occluding patch set to 0, then Gaussian pixel
     noise (std ``IMAGE_NOISE_STD``), clipped to [0, 1];
   * audio: white Gaussian noise at ``AUDIO_SNR_DB`` dB SNR relative to the
     clip's own power.

The embedded copy (``mmzoo/datasets/embedded/av_digits.npz``, built by
``scripts/build_av_digits.py``) holds the 250 test recordings and the train
recordings with index 5-24 (1,000), audio stored as 8-bit mu-law. It keeps
the data's CC BY-SA licenses; see ``mmzoo/datasets/embedded/README.md``.
"""

from __future__ import annotations

import gzip
import os
import struct
import wave

import numpy as np

SAMPLE_RATE = 8000
NUM_SAMPLES = 4000
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
CLASS_NAMES = tuple(str(d) for d in range(NUM_CLASSES))
TEST_INDICES = range(0, 5)
IMAGE_NOISE_STD = 0.4
OCCLUSION_SIZE = 12
AUDIO_SNR_DB = -8.0
SPLIT_SEEDS = {"train": 1234, "test": 5678}
PAIRING_SEED = 20240611

_EMBEDDED_PATH = os.path.join(os.path.dirname(__file__), "embedded", "av_digits.npz")


# --------------------------------------------------------------------------
# Reading the raw sources (numpy only; used by the build script and loaders).
# --------------------------------------------------------------------------
def read_mnist(mnist_dir):
    """Reads the MNIST ``t10k`` idx files.

    Args:
        mnist_dir: Folder holding ``t10k-images-idx3-ubyte.gz`` and
            ``t10k-labels-idx1-ubyte.gz``.

    Returns:
        ``(images, labels)``: uint8 arrays of shape ``(N, 28, 28)`` and ``(N,)``.

    Raises:
        FileNotFoundError: If a file is missing.
        ValueError: If a file is not a valid idx file.
    """
    images_path = os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz")
    labels_path = os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz")
    with gzip.open(images_path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            raise ValueError(f"{images_path} is not an idx3 image file (magic={magic}).")
        images = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, rows, cols)
    with gzip.open(labels_path, "rb") as f:
        magic, n_labels = struct.unpack(">II", f.read(8))
        if magic != 2049:
            raise ValueError(f"{labels_path} is not an idx1 label file (magic={magic}).")
        labels = np.frombuffer(f.read(), dtype=np.uint8)
    if n_labels != n:
        raise ValueError(f"{labels_path} has {n_labels} labels for {n} images.")
    return images, labels


def read_wav_int16(path):
    """Reads a mono 16-bit PCM WAV file into float32 samples in [-1, 1].

    Args:
        path: Path of the WAV file.

    Returns:
        ``(samples, sampling_rate)``.

    Raises:
        ValueError: If the file is not mono 16-bit PCM.
    """
    with wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(
                f"{path}: expected mono 16-bit PCM, got {w.getnchannels()} channels "
                f"of {8 * w.getsampwidth()} bits."
            )
        frames = w.readframes(w.getnframes())
        rate = w.getframerate()
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0, rate


def parse_fsdd_name(filename):
    """Splits an FSDD file name ``{digit}_{speaker}_{index}.wav``.

    Returns:
        ``(digit, speaker, index)`` with ints for digit and index.

    Raises:
        ValueError: If the name does not follow the FSDD pattern.
    """
    stem = os.path.splitext(os.path.basename(filename))[0]
    parts = stem.split("_")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
        raise ValueError(
            f"FSDD file names look like '{{digit}}_{{speaker}}_{{index}}.wav'; received: {filename!r}"
        )
    return int(parts[0]), parts[1], int(parts[2])


# --------------------------------------------------------------------------
# The recipe.
# --------------------------------------------------------------------------
def fit_waveform(samples, num_samples=NUM_SAMPLES):
    """Trims leading silence, crops/pads to ``num_samples`` and peak-normalises.

    Args:
        samples: 1-D float array.
        num_samples: Output length.

    Returns:
        float32 array of shape ``(num_samples,)``.
    """
    samples = np.asarray(samples, dtype=np.float32)
    frame = 32
    n_frames = len(samples) // frame
    if n_frames > 0:
        rms = np.sqrt(np.mean(samples[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
        loud = np.nonzero(rms > 0.05 * rms.max())[0]
        start = max(0, int(loud[0]) * frame - 200) if len(loud) else 0
        samples = samples[start:]
    out = np.zeros(num_samples, np.float32)
    out[: min(num_samples, len(samples))] = samples[:num_samples]
    peak = np.abs(out).max()
    if peak > 0:
        out *= 0.9 / peak
    return out


def mulaw_encode(x, mu=255):
    """Encodes float samples in [-1, 1] to 8-bit mu-law codes (uint8)."""
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.round((y + 1) / 2 * mu).astype(np.uint8)


def mulaw_decode(codes, mu=255):
    """Decodes 8-bit mu-law codes back to float32 samples in [-1, 1]."""
    y = codes.astype(np.float32) / mu * 2 - 1
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


def pair_images(audio_labels, image_labels, image_indices, seed=PAIRING_SEED):
    """Picks, for each recording, a distinct image of the same digit.

    Args:
        audio_labels: int array, the digit of each recording.
        image_labels: int array, the digit of every MNIST image.
        image_indices: the MNIST indices this split may use.
        seed: Seed of the draw.

    Returns:
        int array of MNIST indices, one per recording.

    Raises:
        ValueError: If a digit has more recordings than images in the pool.
    """
    rng = np.random.RandomState(seed)
    image_indices = np.asarray(image_indices)
    chosen = np.empty(len(audio_labels), np.int64)
    for digit in np.unique(audio_labels):
        slots = np.nonzero(audio_labels == digit)[0]
        pool = image_indices[image_labels[image_indices] == digit]
        if len(pool) < len(slots):
            raise ValueError(f"Digit {digit}: {len(slots)} recordings but only {len(pool)} images.")
        chosen[slots] = rng.choice(pool, size=len(slots), replace=False)
    return chosen


def degrade(images, audio, split, seed=None):
    """Applies the deterministic AV-digits degradation.

    Args:
        images: float32 ``(N, 28, 28, 1)`` in [0, 1].
        audio: float32 ``(N, T)`` waveforms.
        split: ``"train"`` or ``"test"`` (selects the seed).
        seed: Optional seed overriding the split's.

    Returns:
        ``(images, audio)``, degraded copies.
    """
    rng = np.random.RandomState(SPLIT_SEEDS[split] if seed is None else seed)
    n, h, w, _ = images.shape
    images = images.copy()
    ys = rng.randint(0, h - OCCLUSION_SIZE + 1, size=n)
    xs = rng.randint(0, w - OCCLUSION_SIZE + 1, size=n)
    for i in range(n):
        images[i, ys[i] : ys[i] + OCCLUSION_SIZE, xs[i] : xs[i] + OCCLUSION_SIZE] = 0.0
    images = np.clip(images + rng.normal(0, IMAGE_NOISE_STD, images.shape), 0, 1).astype(np.float32)
    power = np.mean(audio**2, axis=1, keepdims=True)
    noise_std = np.sqrt(power / 10 ** (AUDIO_SNR_DB / 10))
    audio = (audio + rng.normal(size=audio.shape) * noise_std).astype(np.float32)
    return images, audio


def build_arrays(fsdd_dir, mnist_dir, train_indices=range(5, 50), num_samples=NUM_SAMPLES):
    """Builds clean, paired AV-digits arrays from the raw sources.

    Args:
        fsdd_dir: Folder of FSDD ``.wav`` recordings.
        mnist_dir: Folder of the MNIST ``t10k`` idx files.
        train_indices: FSDD recording indices used for train (test is 0-4).
        num_samples: Waveform length.

    Returns:
        A dict with ``{split}_images`` (uint8, N x 28 x 28), ``{split}_audio``
        (float32, N x num_samples), ``{split}_labels`` (uint8) and
        ``{split}_ids`` (recording file names) for ``split`` in train, test.

    Raises:
        FileNotFoundError: If a folder is missing or holds no recordings.
    """
    if not os.path.isdir(fsdd_dir):
        raise FileNotFoundError(f"FSDD folder not found: {fsdd_dir}")
    names = sorted(f for f in os.listdir(fsdd_dir) if f.endswith(".wav"))
    if not names:
        raise FileNotFoundError(f"No .wav recordings in FSDD folder: {fsdd_dir}")
    mnist_images, mnist_labels = read_mnist(mnist_dir)
    train_indices = set(train_indices)
    out = {}
    for split in ("train", "test"):
        keep = []
        for name in names:
            digit, _, index = parse_fsdd_name(name)
            in_split = index in TEST_INDICES if split == "test" else index in train_indices
            if in_split:
                keep.append((name, digit))
        labels = np.array([d for _, d in keep], np.uint8)
        audio = np.stack(
            [fit_waveform(read_wav_int16(os.path.join(fsdd_dir, n))[0], num_samples) for n, _ in keep]
        )
        pool = np.arange(0 if split == "train" else 1, len(mnist_labels), 2)
        chosen = pair_images(labels, mnist_labels, pool, seed=PAIRING_SEED + (split == "test"))
        out[f"{split}_images"] = mnist_images[chosen]
        out[f"{split}_audio"] = audio
        out[f"{split}_labels"] = labels
        out[f"{split}_ids"] = np.array([n for n, _ in keep])
    return out


def load_arrays(path=None, degraded=True):
    """Loads the embedded AV-digits arrays as float32 model inputs.

    Args:
        path: An ``.npz`` written by ``scripts/build_av_digits.py``; defaults
            to the copy shipped inside the package.
        degraded: Apply the recipe's degradation (default). ``False`` gives
            the clean pairs.

    Returns:
        ``{"train": (inputs, labels), "test": (inputs, labels)}`` where
        ``inputs`` is ``{"image": (N, 28, 28, 1) float32 in [0, 1],
        "audio": (N, 4000) float32}`` and ``labels`` is int32 ``(N,)``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
    """
    path = path or _EMBEDDED_PATH
    if not os.path.exists(path):
        raise FileNotFoundError(f"AV-digits arrays not found: {path}")
    with np.load(path) as data:
        out = {}
        for split in ("train", "test"):
            images = data[f"{split}_images"].astype(np.float32)[..., None] / 255.0
            audio = data[f"{split}_audio"]
            audio = mulaw_decode(audio) if audio.dtype == np.uint8 else audio.astype(np.float32)
            if degraded:
                images, audio = degrade(images, audio, split)
            out[split] = (
                {"image": images, "audio": audio},
                data[f"{split}_labels"].astype(np.int32),
            )
    return out
