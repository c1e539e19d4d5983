"""The ``mmzoo`` command (``mmzoo.cli.main``): thin, parses arguments before importing TensorFlow."""

from mmzoo.cli.main import main

__all__ = ["main"]
