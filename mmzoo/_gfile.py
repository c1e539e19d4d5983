"""File access through ``tf.io.gfile``: one code path for local files and ``gs://`` (any TensorFlow file system).

Paths with a scheme (``gs://bucket/x``, ``ram://x``) go to TensorFlow's file
systems; local paths behave as with ``open()`` and ``os``: the same text
decoding and newline handling, and failures raised as ``OSError``
(``FileNotFoundError``, ``PermissionError``...) with the same ``strerror``.
Callers use ``tf.io.gfile`` itself for what it does alone (``exists``,
``isdir``, ``listdir``, ``makedirs``, ``GFile``); this module holds the rest.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import posixpath

import tensorflow as tf

_ERRNO_BY_TEXT = {os.strerror(code): code for code in errno.errorcode}
_ERRNO_BY_ERROR = {
    tf.errors.NotFoundError: errno.ENOENT,
    tf.errors.PermissionDeniedError: errno.EACCES,
    tf.errors.AlreadyExistsError: errno.EEXIST,
    tf.errors.ResourceExhaustedError: errno.ENOSPC,
}


def is_remote(path):
    """Whether ``path`` has a scheme (``gs://``, ``ram://``...), i.e. is not a local path.

    Args:
        path: A ``str`` or ``os.PathLike`` path.

    Returns:
        ``True`` when the path holds ``"://"``.
    """
    return "://" in os.fspath(path)


def normpath(path):
    """``os.path.normpath`` that keeps the ``//`` after a scheme (``gs://b/x/../y`` -> ``gs://b/y``).

    Args:
        path: A local or remote path.

    Returns:
        The normalized path (``str``).
    """
    path = os.fspath(path)
    if not is_remote(path):
        return os.path.normpath(path)
    scheme, rest = path.split("://", 1)
    return f"{scheme}://{posixpath.normpath(rest) if rest else ''}"


def abspath(path):
    """``os.path.abspath`` for a local path; a remote path is only normalized.

    Args:
        path: A local or remote path.

    Returns:
        The absolute path (``str``).
    """
    return normpath(path) if is_remote(path) else os.path.abspath(path)


def resolve(folder, path):
    """``path`` resolved against ``folder`` and normalized; an absolute or remote ``path`` is kept as it is.

    Args:
        folder: The folder relative paths start from (local or remote).
        path: A relative, absolute or remote path.

    Returns:
        The resolved path (``str``).
    """
    path = os.fspath(path)
    return normpath(path if is_remote(path) else os.path.join(folder, path))


def isfile(path):
    """Whether ``path`` exists and is not a folder (``os.path.isfile`` for any file system).

    Args:
        path: A local or remote path.

    Returns:
        ``bool``.
    """
    try:
        return not tf.io.gfile.stat(path).is_directory  # one request on a remote file system
    except tf.errors.OpError:
        return False


@contextlib.contextmanager
def os_errors(path):
    """Raises the ``tf.errors.OpError`` of the block as the ``OSError`` that ``open()`` / ``os`` would raise.

    A local failure keeps its errno and ``strerror`` (``No such file or
    directory``: a ``FileNotFoundError``); a remote one gets the errno of its
    error class and TensorFlow's message as ``strerror``.

    Args:
        path: The path named in the ``OSError``.

    Yields:
        Nothing.

    Raises:
        OSError: In place of a ``tf.errors.OpError``.
    """
    try:
        yield
    except tf.errors.OpError as error:
        text = error.message.rsplit("; ", 1)[-1]
        code = _ERRNO_BY_TEXT.get(text)
        if code is None:
            code = _ERRNO_BY_ERROR.get(type(error), errno.EIO)
            text = error.message or os.strerror(code)
        raise OSError(code, text, os.fspath(path)) from error


def read_bytes(path):
    """The contents of a file.

    Args:
        path: A local or remote file.

    Returns:
        ``bytes``.

    Raises:
        OSError: If the file cannot be read (``FileNotFoundError`` when missing).
    """
    with os_errors(path), tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def open_text(path, encoding="utf-8", errors="strict", newline=None):
    """A file opened for reading text, as ``open(path, encoding=..., errors=..., newline=...)`` opens it.

    The file is read whole; the result decodes and splits lines exactly as
    ``open()`` does (``newline=None``: universal newlines; ``""``: none
    translated, as ``csv`` wants).

    Args:
        path: A local or remote file.
        encoding: Text encoding.
        errors: Decoding error handler (``"strict"``, ``"surrogateescape"``...).
        newline: As for ``open()``.

    Returns:
        An ``io.TextIOWrapper`` (a context manager).

    Raises:
        OSError: If the file cannot be read.
    """
    return io.TextIOWrapper(io.BytesIO(read_bytes(path)), encoding=encoding, errors=errors, newline=newline)


def write_bytes(path, data):
    """Writes ``data`` to a file, creating its folder first.

    Args:
        path: A local or remote file (replaced if it exists).
        data: ``bytes``.

    Returns:
        ``path``.

    Raises:
        OSError: If the folder or the file cannot be written.
    """
    parent = os.path.dirname(abspath(path))
    with os_errors(path):
        if is_remote(parent) or not is_remote(path):  # not for a file at a file system's root (``ram://x``)
            tf.io.gfile.makedirs(parent)
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(data)
    return path


def write_text(path, text):
    """Writes ``text`` as UTF-8 to a file, creating its folder first (see ``write_bytes``).

    Args:
        path: A local or remote file.
        text: ``str``.

    Returns:
        ``path``.
    """
    return write_bytes(path, text.encode("utf-8"))


def remove_tree(path):
    """Removes a folder and everything in it, ignoring errors (``shutil.rmtree(path, ignore_errors=True)``).

    ``tf.io.gfile.rmtree`` on ``ram://`` raises ``NotFoundError`` for a
    folder holding only files (after removing them), and ``exists`` may
    still report the removed folder; callers must not rely on either.

    Args:
        path: A local or remote folder; nothing happens if it is missing.
    """
    with contextlib.suppress(tf.errors.OpError):
        tf.io.gfile.rmtree(path)
