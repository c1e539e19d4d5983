"""Where the shared real data lives: argument, ``MMZOO_DATA``, ``../shared/data``."""

from __future__ import annotations

import os

import tensorflow as tf

from mmzoo import _gfile

ENV_VAR = "MMZOO_DATA"
FALLBACK = os.path.join("..", "shared", "data")


def resolve_data_dir(data_dir=None):
    """Finds the shared data folder.

    The first of these that is given wins: the ``data_dir`` argument, the
    environment variable ``MMZOO_DATA``, then ``../shared/data`` relative to
    the current working directory when that folder exists.

    Args:
        data_dir: A folder path (local or ``gs://``), or ``None`` to look it up.

    Returns:
        The absolute path of the folder (a remote one as given, normalized).

    Raises:
        FileNotFoundError: If the chosen folder does not exist, or none was
            given and the fallback is absent.

    Example:

    >>> import os
    >>> resolve_data_dir(".") == os.path.abspath(".")
    True
    >>> os.path.isdir(os.path.join(resolve_data_dir(), "openmoji"))  # $MMZOO_DATA or ../shared/data
    True
    """
    if data_dir is not None:
        source = "data_dir"
    elif os.environ.get(ENV_VAR):
        data_dir, source = os.environ[ENV_VAR], f"${ENV_VAR}"
    else:
        data_dir, source = FALLBACK, "the fallback ../shared/data (relative to the working directory)"
        if not tf.io.gfile.isdir(data_dir):
            raise FileNotFoundError(
                f"No data folder: pass `data_dir`, set ${ENV_VAR}, or run from a folder with "
                f"../shared/data beside it. Working directory: {os.getcwd()}"
            )
    data_dir = _gfile.abspath(data_dir)
    if not tf.io.gfile.isdir(data_dir):
        raise FileNotFoundError(f"Data folder from {source} does not exist: {data_dir}")
    return data_dir


def require_path(data_dir, *parts):
    """Returns ``data_dir/parts...``, raising a clear error if it is missing.

    Args:
        data_dir: The data folder.
        *parts: Path components below it.

    Returns:
        The joined path.

    Raises:
        FileNotFoundError: If the path does not exist.
    """
    path = os.path.join(data_dir, *parts)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"Expected {os.path.join(*parts)} in the data folder {data_dir}; not found: {path}")
    return path
