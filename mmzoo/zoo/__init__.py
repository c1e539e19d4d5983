"""The model zoo: ``list_models()``, ``build(name, **overrides)``."""

from mmzoo.zoo import av_digits, reference  # noqa: F401  (registers the models)
from mmzoo.zoo.registry import ZooEntry, build, build_tiny, describe, get, list_models, markdown_table, register

__all__ = ["ZooEntry", "build", "build_tiny", "describe", "get", "list_models", "markdown_table", "register"]
