"""``mmzoo.serving``: exports and what they do at serving time.

* ``saved_model``: ``export`` (SavedModel with tensor, raw-input and metadata
  signatures) and ``load`` (``mmzoo.export`` / ``mmzoo.load``).
* ``tflite``: ``export_tflite`` and the ``TFLiteModel`` runner.

* ``raw``: raw-input decoding (image/WAV bytes, UTF-8 text) inside the
  serving function, through the ``mmzoo.data`` column specs used in training.
* ``outputs``: the task of a model (from its output layer) and its named
  serving outputs (probabilities, class id, class name).
* ``metadata``: the JSON contract written into the SavedModel's assets.
* ``presets``: ready preprocessing for zoo tasks (``"av_digits"``).
* ``loaded``: ``ExportedModel``, the object ``mmzoo.load`` returns.
"""

from mmzoo.serving.loaded import ExportedModel
from mmzoo.serving.metadata import METADATA_FILE, read_metadata
from mmzoo.serving.presets import PRESETS, preset

__all__ = ["METADATA_FILE", "PRESETS", "ExportedModel", "preset", "read_metadata"]
