"""The input/output contract written into an export's ``assets/`` folder.

``assets/mmzoo_metadata.json`` is plain JSON, readable by any client
(without TensorFlow); the ``metadata`` signature returns the same text to
clients that only talk to a model server. Tokenizers of text inputs are
saved beside it (``assets/tokenizers/{input}/tokenizer.json`` and
``vocab.txt``), the exact files ``mmzoo.data.load_tokenizer`` reads.
"""

from __future__ import annotations

import json
import os

from mmzoo import _gfile

FORMAT = "mmzoo-serving"
FORMAT_VERSION = 1
METADATA_FILE = "mmzoo_metadata.json"
TOKENIZERS_DIR = "tokenizers"


def build_metadata(model_name, task, class_names, input_specs, columns, signatures, head=None, optional=()):
    """Assembles the metadata dict.

    Args:
        model_name: The Keras model's name.
        task: The serving task (``mmzoo.serving.outputs.TASKS`` or ``"embeddings"``).
        class_names: Class names or ``None``.
        input_specs: Dict of ``tf.TensorSpec`` keyed by input name.
        columns: Dict of raw column configs (``raw.column_config``) keyed by
            input name; inputs without one have no raw form.
        signatures: Dict ``{signature: {"inputs": [...], "outputs": [...]}}``.
        head: The model's head config (``mmzoo.heads.Head.get_config``: kind,
            units, class names, ``threshold``, ``top_k``), or ``None``.
        optional: Names of inputs that may be absent (all zeros in
            ``serving_default``, an empty string in ``serving_raw``).

    Returns:
        A JSON-able dict. ``task``, ``class_names`` and ``threshold``
        (binary/multilabel, else ``None``) come from the model's head;
        ``head`` holds its whole config.
    """
    inputs = {}
    for name, spec in input_specs.items():
        entry = {"dtype": spec.dtype.name, "shape": [None] + [int(d) for d in spec.shape[1:]]}
        entry["optional"] = name in optional
        entry["absent_encoding"] = (
            "all zeros (serving_default) or an empty string (serving_raw)" if name in optional else None
        )
        entry["raw"] = columns.get(name)
        if entry["raw"] and entry["raw"]["kind"] == "text":
            entry["raw"]["tokenizer_dir"] = f"assets/{TOKENIZERS_DIR}/{name}"
        inputs[name] = entry
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "task": task,
        "class_names": None if class_names is None else list(class_names),
        "threshold": (head or {}).get("threshold"),
        "head": head,
        "inputs": inputs,
        "signatures": signatures,
        # Ops a client process must register before tf.saved_model.load (TF Serving ships them).
        "requires": ["tensorflow_text"] if any(c and c["kind"] == "text" for c in columns.values()) else [],
    }


def read_metadata(path):
    """Reads the metadata of an exported SavedModel folder.

    Args:
        path: The SavedModel folder.

    Returns:
        The metadata dict.

    Raises:
        FileNotFoundError: If the folder has no ``assets/mmzoo_metadata.json``.
        ValueError: If the file is not mmzoo serving metadata.

    Example::

        read_metadata("saved_models/av_digits_concat")["class_names"][:3]   # ['0', '1', '2']
    """
    file = os.path.join(os.fspath(path), "assets", METADATA_FILE)
    if not _gfile.isfile(file):
        raise FileNotFoundError(f"{path} is not an mmzoo export: {file} is missing.")
    with _gfile.open_text(file) as f:
        metadata = json.load(f)
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{file} is not mmzoo serving metadata (format={metadata.get('format')!r}).")
    return metadata
