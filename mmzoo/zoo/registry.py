"""The zoo registry: named, documented model builders.

``describe()`` / ``markdown_table()`` list every model with its overrides
(the builder's keyword arguments and their defaults) and its weight count;
``mmzoo list --details`` prints the same.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings

_REGISTRY = {}
_PARAM_COUNTS = {}  # (name, tiny) -> weight count of the model built with the defaults


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
        return ((inspect.getdoc(self.builder) or "").splitlines() or [""])[0]

    def overrides(self):
        """The builder's keyword arguments (what ``mmzoo.build(name, **overrides)`` accepts) and their defaults.

        Returns:
            A dict ``{argument: default}`` in signature order (``None`` for
            an argument without a default).

        Example:

        >>> import mmzoo
        >>> mmzoo.zoo.get("av_digits_concat").overrides()["dropout"]
        0.2
        """
        return {
            name: (None if p.default is inspect.Parameter.empty else p.default)
            for name, p in inspect.signature(self.builder).parameters.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }

    def count_params(self, tiny=False):
        """The number of weights of the model built with its defaults (computed once per process).

        Builds the model (the full-size BERT/ResNet reference models take
        several seconds each on a CPU), counts its weights (trainable and
        not) and drops it.

        Args:
            tiny: Count the tiny version (``build_tiny``) instead.

        Returns:
            The weight count (an int).

        Example:

        >>> import mmzoo
        >>> mmzoo.zoo.get("av_digits_concat").count_params(tiny=True) > 0
        True
        """
        key = (self.name, bool(tiny))
        if key not in _PARAM_COUNTS:
            with warnings.catch_warnings():  # e.g. the LargeModelWarning of the BERT-base models
                warnings.simplefilter("ignore")
                model = self.builder(**(self.tiny if tiny else {}))
            _PARAM_COUNTS[key] = int(model.count_params())
            del model
        return _PARAM_COUNTS[key]


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
        previous = _REGISTRY.get(name)
        if previous is not None and (previous.builder.__module__, previous.builder.__qualname__) != (
            fn.__module__, fn.__qualname__
        ):  # re-importing the same module (e.g. doctest collection) re-registers the same builder: fine
            raise ValueError(f"A zoo model named {name!r} is already registered.")
        _REGISTRY[name] = ZooEntry(name, fn, dict(tiny or {}), tuple(modalities))
        return fn

    return decorator


def list_models():
    """Returns the sorted names of every registered zoo model.

    Example:

    >>> import mmzoo
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

    >>> import mmzoo
    >>> model = mmzoo.build("image_text_cnn", image_shape=(64, 64, 3))
    >>> sorted(model.input)
    ['image', 'text']
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


def describe(names=None, tiny=False, count_params=True):
    """One record per zoo model: name, summary, modalities, overrides and weight count.

    Args:
        names: Model names (default: every registered model, sorted).
        tiny: Count the weights of the tiny versions instead.
        count_params: Build each model to count its weights (``False``: the
            ``params`` field is ``None``; nothing is built).

    Returns:
        A list of dicts with keys ``name``, ``summary``, ``modalities``,
        ``overrides`` (``{argument: default}``), ``tiny_overrides`` and
        ``params``.

    Raises:
        ValueError: If a name is not registered.

    Example:

    >>> import mmzoo
    >>> record = mmzoo.zoo.registry.describe(["av_digits_concat"], tiny=True)[0]
    >>> record["modalities"], record["params"] > 0
    (('image', 'audio'), True)
    """
    from mmzoo import zoo  # the package: its models are registered (also when this file is loaded twice)  # noqa: PLC0415

    records = []
    for name in zoo.list_models() if names is None else list(names):
        entry = zoo.get(name)
        records.append({
            "name": name,
            "summary": entry.summary,
            "modalities": entry.modalities,
            "overrides": entry.overrides(),
            "tiny_overrides": dict(entry.tiny),
            "params": entry.count_params(tiny=tiny) if count_params else None,
        })
    return records


def markdown_table(names=None, tiny=False):
    """The zoo as a Markdown table: name, summary, inputs, weights, overrides with defaults.

    The README's zoo table is generated with it.

    Args:
        names: Model names (default: all).
        tiny: Weight counts of the tiny versions.

    Returns:
        The table, one line per row, as a string.

    Example:

    >>> import mmzoo
    >>> print(mmzoo.zoo.registry.markdown_table(["av_digits_concat"], tiny=True).splitlines()[0])
    | name | what | inputs | weights | overrides (defaults) |
    """
    lines = ["| name | what | inputs | weights | overrides (defaults) |", "| --- | --- | --- | --- | --- |"]
    for record in describe(names, tiny=tiny):
        overrides = ", ".join(f"`{k}={v!r}`" for k, v in record["overrides"].items())
        lines.append(
            f"| `{record['name']}` | {record['summary'].replace('|', '/')} | {', '.join(record['modalities'])} "
            f"| {record['params']:,} | {overrides} |"
        )
    return "\n".join(lines)
