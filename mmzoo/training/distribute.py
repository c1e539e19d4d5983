"""Scale-out helpers over ``tf.distribute``: strategies, datasets, chief logic, precision.

The same model code runs on one CPU, several GPUs, a TPU and several
machines: build, compile and create the optimizer inside
``strategy(kind).scope()`` and feed datasets batched with the *global* batch
size (the sum over all replicas).

* ``strategy(kind)``: ``"auto"`` (TPU if a cluster resolver finds one, else
  ``MirroredStrategy`` over several GPUs, else the default strategy),
  ``"default"``, ``"mirrored"``, ``"tpu"``, ``"multi_worker"``
  (``MultiWorkerMirroredStrategy`` configured by ``TF_CONFIG``).
* ``distribute_dataset``: a global-batch ``tf.data`` pipeline -> a
  distributed dataset (per-replica batches, data sharded across workers).
* ``tf_config`` / ``task`` / ``is_chief``: the standard ``TF_CONFIG``
  conventions (``chief``, or ``worker`` 0 when there is no chief).
* ``write_dir`` / ``chief_output_dir``: where a task writes; non-chief
  workers write to a temporary folder that is removed afterwards, as the
  TensorFlow multi-worker guide documents.
* ``precision_policy``: sets the Keras global dtype policy
  (``"float32"``, ``"mixed_float16"``, ``"mixed_bfloat16"``) and restores it.

Example::

    import mmzoo

    strategy = mmzoo.distribute.strategy("auto")
    with strategy.scope():
        model = mmzoo.build("av_digits_concat")
    train_ds, test_ds = mmzoo.datasets.av_digits(batch_size=32 * strategy.num_replicas_in_sync)
    model.fit(train_ds, epochs=2)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys

import keras
import tensorflow as tf

from mmzoo import _gfile

KINDS = ("auto", "default", "mirrored", "tpu", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
PRECISION_CHOICES = ("auto", *PRECISIONS)
# CPU instructions that make bfloat16 matrix products native (oneDNN uses them); without them bf16 is emulated:
# measured 7.6x slower than float32 on an AVX2-only EPYC (README).
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


TPU_VM_DEVICES = ("/dev/accel0", "/dev/vfio/0")  # TPU chips on a TPU VM (v2-v4: accel, v5e and newer: vfio)


def _on_tpu_vm():
    return any(os.path.exists(path) for path in TPU_VM_DEVICES)


def tpu_cluster_resolver(tpu=None):
    """Returns a ``TPUClusterResolver`` when a TPU is reachable, else ``None``.

    With ``tpu=None`` the environment decides, in the order TensorFlow
    documents: ``TPU_NAME`` (or Colab's legacy ``COLAB_TPU_ADDR``), then
    ``tpu="local"`` when this machine is a TPU VM (today's Colab TPU
    runtimes and Cloud TPU VMs, whose chips show up as ``/dev/accel*`` or
    ``/dev/vfio/*``). ``TPUClusterResolver(tpu=None)`` alone raises "Please
    provide a TPU Name" on a TPU VM.

    Args:
        tpu: TPU name, ``grpc://`` address or ``"local"``; ``None``: the
            environment's.

    Returns:
        A ``tf.distribute.cluster_resolver.TPUClusterResolver`` or ``None``.
    """
    candidates = [tpu] if tpu is not None else []
    if tpu is None:
        if os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
            candidates.append(None)  # the resolver reads these itself
        if _on_tpu_vm():
            candidates.append("local")
    for candidate in candidates:
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=candidate)
            if candidate != "local" and not resolver.master() and not resolver.cluster_spec().as_dict():
                continue
            return resolver
        except (ValueError, RuntimeError, KeyError, tf.errors.NotFoundError, tf.errors.UnavailableError):
            continue
    return None


def tpu_strategy(resolver):
    """Connects to and initialises the TPU system, the documented way.

    Args:
        resolver: A ``TPUClusterResolver`` (see ``tpu_cluster_resolver``).

    Returns:
        A ``tf.distribute.TPUStrategy``.
    """
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def strategy(kind="auto", tpu=None, verbose=True):
    """Returns a ``tf.distribute.Strategy`` of the given kind.

    Args:
        kind: ``"auto"`` (TPU when one is found, else ``MirroredStrategy``
            over all GPUs when there are several, else the default strategy),
            ``"default"``, ``"mirrored"`` (all local GPUs, or the CPU /
            logical CPU devices), ``"tpu"`` or ``"multi_worker"``
            (``MultiWorkerMirroredStrategy`` configured by ``TF_CONFIG``).
        tpu: TPU name or address for ``"tpu"`` / ``"auto"`` (``None``: the
            environment's: ``TPU_NAME``, else ``"local"`` on a TPU VM; see
            ``tpu_cluster_resolver``).
        verbose: With ``kind="auto"``, print one line to stderr saying which
            strategy was chosen and why (it is always logged to the
            ``"mmzoo"`` logger at INFO level).

    Returns:
        A ``tf.distribute.Strategy``.

    Raises:
        ValueError: If ``kind`` is unknown, if ``kind="tpu"`` and no TPU is
            found, or if ``kind="multi_worker"`` and ``TF_CONFIG`` is unset
            or invalid.

    Example:

    >>> import mmzoo
    >>> s = mmzoo.distribute.strategy("default")
    >>> s.num_replicas_in_sync
    1
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {', '.join(KINDS)}. Received: kind={kind!r}")
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi_worker":
        if not tf_config():  # validates TF_CONFIG early with a clear message
            raise ValueError(
                "kind='multi_worker' needs the TF_CONFIG environment variable (the cluster's workers and this "
                "task), set on every worker, e.g. TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", "
                "\"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}'; without it "
                "training would silently run as a single worker. Received: TF_CONFIG unset"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tpu_cluster_resolver(tpu)
    if kind == "tpu":
        if resolver is None:
            raise ValueError(
                f"kind='tpu' but no TPU was found (tpu={tpu!r}). On Colab choose a TPU runtime; on a Cloud TPU VM "
                "run on the TPU host; or use kind='auto' to fall back to GPUs/CPU."
            )
        return tpu_strategy(resolver)
    if resolver is not None:
        chosen, why = tpu_strategy(resolver), f"a TPU was found ({_describe_tpu(tpu)})"
    elif len(tf.config.list_logical_devices("GPU")) > 1:
        gpus = len(tf.config.list_logical_devices("GPU"))
        chosen, why = tf.distribute.MirroredStrategy(), f"no TPU, {gpus} GPUs"
    else:
        gpus = len(tf.config.list_logical_devices("GPU"))
        chosen, why = tf.distribute.get_strategy(), f"no TPU, {gpus or 'no'} GPU{'' if gpus == 1 else 's'}"
    replicas = chosen.num_replicas_in_sync
    line = f"mmzoo: strategy('auto') chose {type(chosen).__name__}: {why} ({replicas} replica{'s' * (replicas != 1)})"
    logging.getLogger("mmzoo").info(line)
    if verbose:
        print(line, file=sys.stderr)
    return chosen


def _describe_tpu(tpu):
    if tpu is not None:
        return f"tpu={tpu!r}"
    if os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
        return "TPU_NAME / COLAB_TPU_ADDR"
    return "tpu='local' on this TPU VM"


def is_multi_worker(strategy_):
    """Whether ``strategy_`` is a ``MultiWorkerMirroredStrategy``."""
    return isinstance(strategy_, tf.distribute.MultiWorkerMirroredStrategy)


def distribute_dataset(strategy_, dataset):
    """Distributes a dataset batched with the global batch size.

    Each global batch is split into per-replica batches; across workers the
    data is sharded by element (``AutoShardPolicy.DATA``), so in-memory
    pipelines work without files. Use ``drop_remainder=True`` under several
    workers so that every worker runs the same number of steps.

    Args:
        strategy_: A ``tf.distribute.Strategy``.
        dataset: A ``tf.data.Dataset`` batched with the global batch size.

    Returns:
        A ``tf.distribute.DistributedDataset``.

    Example::

        train_ds, _ = mmzoo.datasets.av_digits(batch_size=64, drop_remainder=True)
        dist = mmzoo.distribute.distribute_dataset(strategy, train_ds)
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy_.experimental_distribute_dataset(dataset.with_options(options))


def global_batch_size(per_replica_batch_size, strategy_):
    """The global batch size: ``per_replica_batch_size * num_replicas_in_sync``.

    Raises:
        ValueError: If ``per_replica_batch_size`` is not a positive integer.
    """
    value = per_replica_batch_size
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"`per_replica_batch_size` must be a positive integer. Received: per_replica_batch_size={value!r}"
        )
    return per_replica_batch_size * strategy_.num_replicas_in_sync


def tf_config():
    """The parsed ``TF_CONFIG`` environment variable (``{}`` when unset).

    Raises:
        ValueError: If ``TF_CONFIG`` is not a JSON object with a ``cluster``
            and a ``task`` of a type present in the cluster.
    """
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}). Received: TF_CONFIG={raw!r}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise ValueError(f'TF_CONFIG needs a "cluster" object. Received: TF_CONFIG={raw!r}')
    task_ = config.get("task") or {}
    if task_ and task_.get("type") not in config["cluster"]:
        raise ValueError(
            f'TF_CONFIG task type {task_.get("type")!r} is not in its cluster. Received: TF_CONFIG={raw!r}'
        )
    return config


def task():
    """``(task_type, task_id)`` from ``TF_CONFIG``; ``(None, None)`` when unset."""
    task_ = tf_config().get("task") or {}
    return task_.get("type"), task_.get("index", 0) if task_ else None


def is_chief(task_type=None, task_id=None, cluster=None):
    """Whether this task writes the outputs (the TensorFlow convention).

    The chief is the ``chief`` task, or worker 0 when the cluster has no
    ``chief``; without ``TF_CONFIG`` (one machine) the only task is chief.

    Args:
        task_type: Task type; ``None`` reads ``TF_CONFIG``.
        task_id: Task index; ``None`` reads ``TF_CONFIG``.
        cluster: Cluster dict; ``None`` reads ``TF_CONFIG``.

    Returns:
        ``True`` for the chief.

    Example:

    >>> import mmzoo
    >>> mmzoo.distribute.is_chief("worker", 1, {"worker": ["a:1", "b:2"]})
    False
    """
    if task_type is None and task_id is None:
        task_type, task_id = task()
    if cluster is None:
        cluster = tf_config().get("cluster", {})
    if task_type is None:
        return True
    return task_type == "chief" or (task_type == "worker" and int(task_id or 0) == 0 and "chief" not in cluster)


def write_dir(output_dir, chief=None):
    """Where this task writes: ``output_dir`` for the chief, else a temporary folder.

    Non-chief workers get ``{output_dir}/workertemp_{task_id}`` (created), to
    be removed with ``cleanup_write_dir`` once written, as documented in
    TensorFlow's multi-worker guide.

    Args:
        output_dir: The chief's output folder.
        chief: Override ``is_chief()``.

    Returns:
        The folder path.
    """
    if is_chief() if chief is None else chief:
        return output_dir
    _, task_id = task()
    path = os.path.join(output_dir, f"workertemp_{task_id if task_id is not None else 0}")
    tf.io.gfile.makedirs(path)
    return path


def cleanup_write_dir(path, output_dir):
    """Removes a worker's temporary ``path`` (nothing when it is ``output_dir``)."""
    if _gfile.abspath(path) != _gfile.abspath(output_dir):
        _gfile.remove_tree(path)


@contextlib.contextmanager
def chief_output_dir(output_dir, chief=None):
    """Context manager yielding ``write_dir(output_dir)`` and cleaning it up.

    Example::

        with mmzoo.distribute.chief_output_dir("runs/a") as out:
            model.save(os.path.join(out, "model.keras"))   # kept only on the chief
    """
    path = write_dir(output_dir, chief)
    try:
        yield path
    finally:
        cleanup_write_dir(path, output_dir)


def cpu_flags(path="/proc/cpuinfo"):
    """The instruction-set flags of this machine's CPU (``set()`` where ``/proc/cpuinfo`` is unreadable)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def auto_precision(strategy=None, flags=None):
    """The mixed-precision policy that is fastest on this machine, and why: ``(precision, reason)``.

    The rule follows what was measured (see the README's throughput
    section): ``"mixed_bfloat16"`` on a TPU and on a CPU with native bf16
    instructions (AVX512-BF16 or AMX); ``"mixed_float16"`` on a GPU with
    tensor cores (compute capability 7.0 or newer); ``"float32"`` otherwise,
    e.g. on an AVX2-only CPU, where bfloat16 is emulated and several times
    slower.

    Args:
        strategy: The ``tf.distribute.Strategy`` training will use
            (``None``: the current one).
        flags: CPU flags to decide from (``None``: this CPU's, see ``cpu_flags``).

    Returns:
        ``(precision, reason)``: one of ``PRECISIONS`` and a short sentence.

    Example:

    >>> from mmzoo.training import distribute
    >>> distribute.auto_precision(flags={"avx2", "fma"})[0]  # on a machine without GPU or TPU
    'float32'
    """
    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy)):
        return "mixed_bfloat16", "TPU (bfloat16 is its native format)"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0)
        if tuple(capability) >= (7, 0):
            return "mixed_float16", f"GPU with tensor cores (compute capability {capability[0]}.{capability[1]})"
        return "float32", f"GPU without tensor cores (compute capability {capability[0]}.{capability[1]})"
    flags = cpu_flags() if flags is None else set(flags)
    native = sorted(f for f in NATIVE_BF16_CPU_FLAGS if f in flags)
    if native:
        return "mixed_bfloat16", f"CPU with native bfloat16 ({', '.join(native)})"
    return "float32", "CPU without native bfloat16 instructions (bfloat16 would be emulated)"


def resolve_precision(precision, strategy=None):
    """``precision`` itself, or ``auto_precision``'s choice for ``"auto"``.

    Raises:
        ValueError: If ``precision`` is not one of ``PRECISION_CHOICES``.
    """
    if precision not in PRECISION_CHOICES:
        raise ValueError(
            f"`precision` must be one of {', '.join(PRECISION_CHOICES)}. Received: precision={precision!r}"
        )
    return auto_precision(strategy)[0] if precision == "auto" else precision


@contextlib.contextmanager
def precision_policy(precision="float32"):
    """Sets the Keras global dtype policy inside the block and restores it after.

    Args:
        precision: ``"float32"``, ``"mixed_float16"`` (GPUs; loss scaling is
            added by ``Model.compile``), ``"mixed_bfloat16"`` (TPUs, CPUs
            with native bf16) or ``"auto"`` (``auto_precision``).

    Raises:
        ValueError: If ``precision`` is unknown.

    Example:

    >>> import keras, mmzoo
    >>> with mmzoo.distribute.precision_policy("mixed_bfloat16"):
    ...     layer = keras.layers.Dense(2)
    >>> layer.dtype_policy.name
    'mixed_bfloat16'
    """
    precision = resolve_precision(precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
