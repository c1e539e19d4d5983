"""The zoo registry: named, documented model builders."""

from __future__ import annotations

import dataclasses
import inspect

_REGISTRY = {}


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """A registered model.

    Attributes:
        name: The name passed to ``mmzoo.build``.
        builder: The function that builds (and compiles) the model.
        tiny: Overrides that build a tiny version (for tests and smoke runs).
        modalities: The input names the model takes.
    """

    name: str
    builder: callable
    tiny: dict
    modalities: tuple

    @property
    def summary(self):
        """The first line of the builder's docstring."""
        return (inspect.getdoc(self.builder) or "").splitlines()[0]


def register(name, tiny=None, modalities=()):
    """Decorator registering a builder function under ``name``.

    Args:
        name: Zoo name (unique).
        tiny: Keyword overrides that make a tiny version of the model.
        modalities: Input names of the model.

    Raises:
        ValueError: If ``name`` is already registered.
    """

    def decorator(fn):
        if name in _REGISTRY:
            raise ValueError(f"A zoo model named {name!r} is already registered.")
        _REGISTRY[name] = ZooEntry(name, fn, dict(tiny or {}), tuple(modalities))
        return fn

    return decorator


def list_models():
    """Returns the sorted names of every registered zoo model.

    Example:

    >>> "av_digits_concat" in mmzoo.list_models()
    True
    """
    return sorted(_REGISTRY)


def get(name):
    """Returns the ``ZooEntry`` for ``name``.

    Raises:
        ValueError: If ``name`` is not registered; the message lists the names.
    """
    if name not in _REGISTRY:
        raise ValueError(f"Unknown zoo model {name!r}. Available: {', '.join(list_models())}")
    return _REGISTRY[name]


def build(name, **overrides):
    """Builds the zoo model ``name``, compiled with its defaults.

    Args:
        name: A name from ``list_models()``.
        **overrides: Keyword arguments of that model's builder (see
            ``help(mmzoo.zoo.get(name).builder)``).

    Returns:
        A compiled ``keras.Model``.

    Raises:
        ValueError: If the name is unknown, an override is not an argument of
            the builder, or an override value is invalid.

    Example:

    >>> model = mmzoo.build("image_text_cnn", image_shape=(64, 64, 3))
    """
    entry = get(name)
    accepted = inspect.signature(entry.builder).parameters
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(
            f"Unknown argument(s) for zoo model {name!r}: {', '.join(unknown)}. Accepted: {', '.join(accepted)}"
        )
    return entry.builder(**overrides)


def build_tiny(name, **overrides):
    """Builds the tiny version of ``name`` (its ``tiny`` overrides, then ``overrides``)."""
    return build(name, **{**get(name).tiny, **overrides})
