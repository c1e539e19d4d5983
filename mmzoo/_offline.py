"""Loading pretrained sources (TF Hub handles, KerasHub presets) with honest offline errors.

A handle or preset that needs a download fails fast when there is no network:
sockets opened while resolving it time out after ``DOWNLOAD_TIMEOUT_S``
seconds, and the error names the handle and how to pass a local copy instead.
"""

from __future__ import annotations

import contextlib
import os
import socket

DOWNLOAD_TIMEOUT_S = 30

HUB_LOCAL_COPY = (
    "To use it offline, download the SavedModel on a machine with network (e.g. "
    "`tensorflow_hub.resolve(handle)` there prints its cached folder), copy that folder here and pass its "
    "path as the handle, or set TFHUB_CACHE_DIR to a cache folder that already holds it."
)
KERAS_APP_LOCAL_COPY = (
    "To use it offline, download the weights file named in the URL on a machine with network, copy it "
    "here and pass its path as `weights=` (or put it in ~/.keras/models/, Keras's download cache)."
)
KERAS_HUB_LOCAL_COPY = (
    "To use it offline, on a machine with network run "
    "`keras_hub.models.Backbone.from_preset(name).save_to_preset(folder)` (and the same for its "
    "tokenizer or image converter), copy the folder here and pass its path instead of the preset name, "
    "or set KAGGLEHUB_CACHE to a cache folder that already holds it."
)


def is_remote(handle):
    """Whether ``handle`` names something to download rather than a local folder."""
    return not os.path.isdir(handle) and not handle.startswith("file://")


@contextlib.contextmanager
def _socket_timeout(seconds):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def fetch(what, handle, load, local_copy_hint):
    """Runs ``load()``; a network failure becomes a ``ConnectionError`` naming ``handle``.

    Args:
        what: What is loaded, for the message (e.g. ``"TF Hub model"``).
        handle: The URL, preset name or folder being loaded.
        load: A no-argument callable that loads it.
        local_copy_hint: How to pass a local copy instead.

    Returns:
        What ``load()`` returns.

    Raises:
        ConnectionError: If the download fails (no network, DNS, timeout).
    """
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            return load()
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError):
        raise
    except OSError as error:  # urllib URLError, requests ConnectionError, socket timeouts
        raise _offline_error(what, handle, error, local_copy_hint) from error
    except Exception as error:
        # keras.utils.get_file turns URL errors into a bare Exception("URL fetch failure on ...").
        if not str(error).startswith("URL fetch failure"):
            raise
        raise _offline_error(what, handle, error, local_copy_hint) from error


def _offline_error(what, handle, error, local_copy_hint):
    return ConnectionError(
        f"Could not download the {what} {handle!r} (no network? {type(error).__name__}: {error}). {local_copy_hint}"
    )


def load_hub_module(handle):
    """``tensorflow_hub.load(handle)`` with a clear error for missing folders and offline URLs.

    Args:
        handle: A TF Hub URL handle or a local SavedModel folder.

    Returns:
        The loaded SavedModel object.

    Raises:
        ValueError: If ``handle`` is not a string or is a missing local path.
        ConnectionError: If a URL handle cannot be downloaded.
    """
    if not isinstance(handle, str) or not handle:
        raise ValueError(f"`handle` must be a TF Hub URL or a SavedModel folder. Received: handle={handle!r}")
    if "://" not in handle and not os.path.isdir(handle):
        raise ValueError(
            f"`handle` is neither a URL nor an existing SavedModel folder. Received: handle={handle!r}"
        )
    import tensorflow_hub as hub  # noqa: PLC0415

    return fetch("TF Hub model", handle, lambda: hub.load(handle), HUB_LOCAL_COPY)
