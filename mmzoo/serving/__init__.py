"""``mmzoo.serving``: what an exported SavedModel does at serving time.

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

__all__ = ["ExportedModel", "METADATA_FILE", "PRESETS", "preset", "read_metadata"]
