"""Ready serving preprocessing for zoo tasks, named by a string."""

from __future__ import annotations

from mmzoo.data import ImageColumn
from mmzoo.datasets import av_digits_recipe as av_digits_data
from mmzoo.serving.audio import FittedAudioColumn


def _av_digits():
    columns = {
        "image": ImageColumn("image", av_digits_data.IMAGE_SHAPE),
        "audio": FittedAudioColumn("audio", av_digits_data.SAMPLE_RATE, av_digits_data.NUM_SAMPLES),
    }
    return columns, list(av_digits_data.CLASS_NAMES)


PRESETS = {"av_digits": _av_digits}


def preset(name):
    """Returns ``(columns, class_names)`` of a named serving preset.

    ``"av_digits"``: PNG/JPEG bytes of a digit -> grey ``(28, 28, 1)``; WAV
    bytes -> mono 8 kHz, then the training recipe of the embedded audio
    (``mmzoo.datasets.av_digits_recipe.fit_waveform`` as TF ops: leading silence
    trimmed, cropped/zero-padded at the end to 4,000 samples, peak 0.9; see
    ``mmzoo.serving.audio``); class names ``"0"``..``"9"``.

    ``mmzoo.export`` takes class names from the model's head first (a zoo
    AV-digits model carries ``"0"``..``"9"``); a preset's class names are
    the fallback for a model whose head has none.

    Args:
        name: A key of ``PRESETS``.

    Returns:
        A dict of ``mmzoo.data`` column specs keyed by input name, and the
        task's class names (or ``None``).

    Raises:
        ValueError: If ``name`` is not a preset.

    Example:

    >>> from mmzoo.serving import preset
    >>> columns, class_names = preset("av_digits")
    >>> sorted(columns), class_names[:2]
    (['audio', 'image'], ['0', '1'])
    """
    if name not in PRESETS:
        raise ValueError(f"Unknown serving preset {name!r}. Available: {sorted(PRESETS)}")
    return PRESETS[name]()
