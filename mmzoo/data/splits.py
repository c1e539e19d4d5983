"""Deterministic train/test splits from a hash of each example's id.

An example's split depends only on its id (and a salt), never on the order or
number of other examples, the Python process or the platform: the id is
hashed with SHA-256 and the first 8 bytes, read as an integer and divided by
2**64, give a number ``u`` in [0, 1). The example is in ``test`` when
``u < test_fraction`` and in ``train`` otherwise. Adding or removing examples
never moves another example between splits.
"""

from __future__ import annotations

import hashlib
import numbers

DEFAULT_SALT = "mmzoo"


def hash_fraction(example_id, salt=DEFAULT_SALT):
    """Maps an id to a stable number in [0, 1).

    Args:
        example_id: Any value; its ``str`` is hashed.
        salt: Changes the assignment of every id at once.

    Returns:
        A float in [0, 1).

    Example:

    >>> 0.0 <= hash_fraction("1F600") < 1.0
    True
    """
    digest = hashlib.sha256(f"{salt}:{example_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(example_id, test_fraction=0.2, salt=DEFAULT_SALT):
    """Returns ``"test"`` or ``"train"`` for one example id.

    Args:
        example_id: The example's id (e.g. an emoji hexcode).
        test_fraction: Expected share of test examples, in (0, 1).
        salt: Hash salt.

    Returns:
        ``"test"`` or ``"train"``.

    Raises:
        ValueError: If ``test_fraction`` is not in (0, 1).

    Example:

    >>> split_of("1F600") in ("train", "test")
    True
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real) or not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be a number in (0, 1). Received: test_fraction={test_fraction!r}")
    return "test" if hash_fraction(example_id, salt) < test_fraction else "train"


def hash_split(ids, test_fraction=0.2, salt=DEFAULT_SALT):
    """Splits a list of ids into train and test positions.

    Args:
        ids: A sequence of example ids.
        test_fraction: Expected share of test examples, in (0, 1).
        salt: Hash salt.

    Returns:
        ``{"train": [positions], "test": [positions]}`` (positions into ``ids``).

    Raises:
        ValueError: If ``test_fraction`` is invalid or an id repeats.

    Example:

    >>> sorted(hash_split(["a", "b", "c"], 0.5))
    ['test', 'train']
    """
    seen = set()
    out = {"train": [], "test": []}
    for position, example_id in enumerate(ids):
        if example_id in seen:
            raise ValueError(f"Example ids must be unique; {example_id!r} repeats (position {position}).")
        seen.add(example_id)
        out[split_of(example_id, test_fraction, salt)].append(position)
    return out
