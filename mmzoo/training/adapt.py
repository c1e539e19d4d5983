"""Adaptation to a new domain from its unlabeled inputs: AdaBN, and cross-modal pseudo-labels.

A model's ``BatchNormalization`` layers normalise with the mean and variance
they saw in training. When the test data come from a new domain (a speaker
the model never heard, a new microphone), those statistics no longer centre
its features. AdaBN (Li et al., "Revisiting Batch Normalization For Practical
Domain Adaptation", 2016) replaces them with the statistics of the new
domain's *unlabeled* inputs and changes nothing else: no labels, no gradient
step, no new layer. For the audio front end's ``{name}_spec_norm`` that is a
per-mel-bin mean and variance over the new speaker's recordings: a speaker-
level spectral normalisation, which averages over every word the speaker
said (a per-recording normalisation, by contrast, depends on the word).

It is transductive: it needs a batch of the new domain's inputs before it
predicts (the README's "A new speaker" measures it with 50 recordings and
with all of them).

``cross_modal_adapt`` goes further when the new domain's examples come with
a second modality that the domain does not change: an image of the digit
does not depend on who speaks it. A model of that modality (the teacher)
labels the new domain's examples it is confident about, and the model of the
shifted modality (the student) is fine-tuned on them, with its training data
replayed so that it keeps what it knew: cross-modal distillation (Gupta et
al., CVPR 2016) as self-training on the new domain (co-training, Blum and
Mitchell 1998). Afterwards the student answers from its own modality alone,
e.g. when the image is missing.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import tensorflow as tf

from mmzoo import _keras_compat


def batch_norm_layers(model):
    """The ``BatchNormalization`` layers of a functional ``model``, in the order they are applied.

    Args:
        model: A built functional ``keras.Model`` (``mmzoo.compose``, the zoo).

    Returns:
        A list of ``keras.layers.BatchNormalization`` layers (may be empty).

    Raises:
        ValueError: If ``model`` is not a functional model, or holds a layer
            with ``BatchNormalization`` sublayers (a nested model: its inner
            layers cannot be reached from this model's inputs).
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs") or model.inputs is None:
        raise ValueError(f"`model` must be a built functional keras.Model. Received: {type(model).__name__}")
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif any(isinstance(inner, keras.layers.BatchNormalization)
                 for inner in _keras_compat.walk_layers(layer, include_self=False)):
            raise ValueError(
                f"Layer {layer.name!r} of model {model.name!r} holds BatchNormalization layers of its own (a nested "
                "model or a custom layer); their inputs cannot be reached from this model's inputs. A nested "
                "functional model can be adapted itself: adapt_batch_norm(model.get_layer(...), ...)."
            )
    return found


def _inputs_of(model, tensor, layer_name):
    """The smallest dict of ``model``'s inputs that ``tensor`` is computed from."""
    named = model.input if isinstance(model.input, dict) else {t.name: t for t in model.inputs}
    names = sorted(named)
    for size in range(1, len(names) + 1):
        for subset in itertools.combinations(names, size):
            try:
                return keras.Model({n: named[n] for n in subset}, tensor), subset
            except ValueError:
                continue
    raise ValueError(f"The input of layer {layer_name!r} is not computed from the inputs of model {model.name!r}.")


def _input_names(inputs):
    """The input names ``inputs`` holds (a dict, or a dataset of dicts or of ``(dict, ...)`` tuples)."""
    if isinstance(inputs, tf.data.Dataset):
        spec = inputs.element_spec
        spec = spec[0] if isinstance(spec, tuple) else spec
        return list(spec) if isinstance(spec, dict) else []
    return list(inputs) if isinstance(inputs, dict) else []


def _batches(inputs, batch_size):
    """``inputs`` (dict of arrays, or a dataset of dicts or ``(dict, ...)`` tuples) as batches of dicts."""
    if isinstance(inputs, tf.data.Dataset):
        for element in inputs:
            x = element[0] if isinstance(element, tuple) else element
            if not isinstance(x, dict):
                raise ValueError(
                    "`inputs` must yield dicts {input name: batch} (or (dict, labels) tuples). "
                    f"Received elements of type {type(x).__name__}"
                )
            yield x
        return
    if not isinstance(inputs, dict):
        raise ValueError(
            f"`inputs` must be a dict {{input name: array}} or a tf.data.Dataset. Received: {type(inputs).__name__}"
        )
    lengths = {name: len(value) for name, value in inputs.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"The arrays of `inputs` must have one length. Received lengths {lengths}")
    count = next(iter(lengths.values()), 0)
    for start in range(0, count, batch_size):
        yield {name: value[start:start + batch_size] for name, value in inputs.items()}


def adapt_batch_norm(model, inputs, batch_size=256, layers=None):
    """Sets ``BatchNormalization`` moving statistics to those of ``inputs`` (AdaBN), layer by layer.

    The layers are adapted in the order the model applies them: each one's
    mean and variance are computed, over every example and every position
    but its feature axis, from the model's own activations in inference mode
    with the layers before it already adapted (exact statistics, not a
    momentum average). Weights, ``gamma`` and ``beta`` are unchanged.
    ``inputs`` need only the inputs a layer depends on: the recordings alone
    adapt an audio branch's layers of an audio + image model.

    Args:
        model: A built functional ``keras.Model`` (e.g. from ``mmzoo.compose``
            or ``mmzoo.build``), trained.
        inputs: Unlabeled inputs of the new domain: a dict ``{input name:
            array}`` or a ``tf.data.Dataset`` of such dicts (or of ``(dict,
            labels)`` tuples; the labels are ignored), in the model's input
            format (the same as for ``model.predict``).
        batch_size: Batch size for dict inputs.
        layers: Names of the ``BatchNormalization`` layers to adapt; ``None``
            (default): every one whose inputs are in ``inputs``.

    Returns:
        ``{layer name: number of examples its statistics came from}``.

    Raises:
        ValueError: If ``model`` has no (selected) ``BatchNormalization``
            layer, ``layers`` names an unknown one, ``inputs`` lacks an input
            a selected layer needs or holds no example, or ``batch_size`` is
            not a positive integer.

    Example:

    >>> import numpy as np
    >>> from mmzoo import branches, compose, heads
    >>> from mmzoo.training.adapt import adapt_batch_norm
    >>> audio = branches.audio_spectrogram_cnn(num_samples=4000, sampling_rate=8000, filters=(8,))
    >>> model = compose([audio], head=heads.multiclass(10))
    >>> new_voice = {"audio": np.random.default_rng(0).normal(0, 0.1, (20, 4000)).astype("float32")}
    >>> adapt_batch_norm(model, new_voice)
    {'audio_spec_norm': 20}
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    if not isinstance(inputs, (dict, tf.data.Dataset)):
        raise ValueError(
            f"`inputs` must be a dict {{input name: array}} or a tf.data.Dataset. Received: {type(inputs).__name__}"
        )
    candidates = batch_norm_layers(model)
    if not candidates:
        raise ValueError(f"Model {model.name!r} has no BatchNormalization layer to adapt.")
    if layers is not None:
        layers = [layers] if isinstance(layers, str) else list(layers)
        known = {layer.name for layer in candidates}
        unknown = [name for name in layers if name not in known]
        if unknown:
            raise ValueError(f"`layers` names no BatchNormalization layer of the model: {unknown}. "
                             f"Its BatchNormalization layers: {sorted(known)}")
        candidates = [layer for layer in candidates if layer.name in layers]
    available = set(_input_names(inputs))
    adapted = {}
    for layer in candidates:
        extractor, needed = _inputs_of(model, layer.input, layer.name)
        missing = [name for name in needed if name not in available]
        if missing:
            if layers is None:
                continue  # every layer by default: those of the modalities given
            raise ValueError(f"`inputs` lacks {missing}, which layer {layer.name!r} is computed from. "
                             f"Received inputs: {sorted(available)}")
        examples, count, mean, m2 = 0, 0, None, None
        for batch in _batches(inputs, batch_size):
            features = np.asarray(extractor({name: batch[name] for name in needed}, training=False), np.float64)
            axis = layer.axis % features.ndim
            axes = tuple(i for i in range(features.ndim) if i != axis)
            n = int(np.prod([features.shape[i] for i in axes]))
            if n == 0:
                continue
            examples += features.shape[0]
            batch_mean = features.mean(axis=axes)
            batch_m2 = ((features - np.expand_dims(batch_mean, axes)) ** 2).sum(axis=axes)
            if mean is None:
                count, mean, m2 = n, batch_mean, batch_m2
            else:  # Chan et al.'s pairwise update: exact, and stable for many batches
                delta = batch_mean - mean
                total = count + n
                mean = mean + delta * (n / total)
                m2 = m2 + batch_m2 + delta**2 * (count * n / total)
                count = total
        if mean is None:
            raise ValueError("`inputs` holds no example to adapt on.")
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign((m2 / count).astype(layer.moving_variance.dtype))
        adapted[layer.name] = examples
    if not adapted:
        raise ValueError(f"`inputs` ({sorted(available)}) holds none of the inputs the BatchNormalization layers "
                         f"of model {model.name!r} are computed from.")
    return adapted


def _multiclass_head(model, argument):
    from mmzoo import heads  # noqa: PLC0415

    try:
        head = heads.from_model(model)
    except ValueError as error:
        raise ValueError(f"`{argument}`: {error}") from None
    if head.kind != "multiclass":
        raise ValueError(f"`{argument}` must end in a multiclass head (mmzoo.heads.multiclass); "
                         f"model {model.name!r} has a {head.kind!r} head.")
    return head


def _array_dict(inputs, argument, names):
    if not isinstance(inputs, dict):
        raise ValueError(f"`{argument}` must be a dict {{input name: array}}. Received: {type(inputs).__name__}")
    missing = [name for name in names if name not in inputs]
    if missing:
        raise ValueError(f"`{argument}` lacks {missing}, which the model takes. Received inputs: {sorted(inputs)}")
    arrays = {name: np.asarray(inputs[name]) for name in names}
    lengths = {name: len(value) for name, value in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"The arrays of `{argument}` must have one length. Received lengths {lengths}")
    return arrays, next(iter(lengths.values()), 0)


def _input_keys(model):
    return list(model.input) if isinstance(model.input, dict) else [t.name for t in model.inputs]


def cross_modal_adapt(student, teacher, inputs, labeled=None, threshold=0.9, rounds=2, epochs=5, repeat=4,
                      learning_rate=3e-4, batch_size=32, seed=0, verbose=0):
    """Fine-tunes ``student`` on a new domain with the labels ``teacher`` is confident about.

    The teacher predicts every example of ``inputs`` from its own inputs;
    the examples whose top probability is at least ``threshold`` get that
    class as their label (pseudo-label). The student, recompiled with Adam at
    ``learning_rate`` and its head's loss, is then trained for ``epochs`` on
    those examples (each repeated ``repeat`` times) together with
    ``labeled``, its own training data replayed, in one seeded shuffle per
    epoch. Each further round (co-training) labels the examples anew with
    both models, the teacher's probabilities times the adapted student's,
    renormalised (a product of experts, as late fusion of logits), and
    trains the student again from where it is: the student now knows the
    new domain a little, so more examples pass ``threshold``. No true label
    of the new domain is used; the teacher and the student need not share
    an input. Measured in the README's "A new speaker": an image model
    teaching an audio model a voice it never heard. For a late-fusion model
    (``fusion.late("weighted")``, ``fit(fusion="ensemble")``), pass its
    branches, ``mmzoo.training.ensemble.branch_models(model)["audio"]`` and
    ``[...]["image"]``: they share its layers, so the fused model adapts too.

    Args:
        student: A built ``keras.Model`` with a multiclass head
            (``mmzoo.compose`` / ``mmzoo.build``), trained; it is fine-tuned
            in place (and left compiled with the new optimizer).
        teacher: A ``keras.Model`` with a multiclass head over the same
            classes, whose inputs the new domain does not change (e.g. the
            image model of an image + audio task).
        inputs: The new domain's unlabeled examples: a dict ``{input name:
            array}`` holding the inputs of both models, one row per example.
        labeled: ``(dict of arrays, integer labels)`` of the student's
            training data, replayed so that it keeps what it learned, or
            ``None`` (the pseudo-labels alone: the student may forget).
        threshold: Least probability for an example to be used, in
            ``(0, 1]``.
        rounds: Labelling-and-training rounds: ``1``, the teacher alone
            labels; from the second on, teacher and student together.
        epochs: Fine-tuning epochs.
        repeat: How many times each pseudo-labelled example is repeated per
            epoch (its weight against ``labeled``).
        learning_rate: Adam learning rate of the fine-tuning.
        batch_size: Batch size.
        seed: Seed of the shuffle.
        verbose: Keras verbosity of the fine-tuning.

    Returns:
        A dict about the last round: ``"selected"`` (examples
        pseudo-labelled), ``"examples"`` (examples in ``inputs``),
        ``"positions"`` (their row indices), ``"labels"`` (their
        pseudo-labels), ``"confidence"`` (the top probability of every
        example) and ``"history"`` (Keras history); and ``"rounds"``, one
        ``{"selected": int, "history": dict}`` per round.

    Raises:
        ValueError: If a model has no multiclass head, the two disagree in
            their number of classes, ``inputs`` or ``labeled`` lack an input
            of a model or have ragged arrays, an argument is out of range,
            or no example reaches ``threshold`` (the error says the highest
            confidence seen).

    Example:

    >>> import numpy as np
    >>> from mmzoo import branches, compose, heads
    >>> from mmzoo.training.adapt import cross_modal_adapt
    >>> audio = compose([branches.audio_spectrogram_cnn(4000, 8000, filters=(4,))], head=heads.multiclass(10))
    >>> image = compose([branches.image_cnn((28, 28, 1), filters=(4,), name="image")], head=heads.multiclass(10))
    >>> rng = np.random.default_rng(0)
    >>> new_voice = {"audio": rng.normal(0, 0.1, (8, 4000)).astype("float32"),
    ...              "image": rng.uniform(0, 1, (8, 28, 28, 1)).astype("float32")}
    >>> report = cross_modal_adapt(audio, image, new_voice, threshold=0.01, rounds=1, epochs=1)
    >>> report["selected"], report["examples"]
    (8, 8)
    """
    student_head = _multiclass_head(student, "student")
    teacher_head = _multiclass_head(teacher, "teacher")
    if student_head.units != teacher_head.units:
        raise ValueError(f"`teacher` predicts {teacher_head.units} classes but `student` {student_head.units}.")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ValueError(f"`threshold` must be a probability in (0, 1]. Received: threshold={threshold!r}")
    for name, value in (("rounds", rounds), ("epochs", epochs), ("repeat", repeat), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be positive. Received: learning_rate={learning_rate!r}")
    student_names, teacher_names = _input_keys(student), _input_keys(teacher)
    new, count = _array_dict(inputs, "inputs", sorted(set(student_names) | set(teacher_names)))
    if count == 0:
        raise ValueError("`inputs` holds no example to adapt on.")
    replay = None
    if labeled is not None:
        if not isinstance(labeled, tuple) or len(labeled) != 2:
            raise ValueError("`labeled` must be a tuple (dict of arrays, labels). "
                             f"Received: {type(labeled).__name__}")
        replay, replay_count = _array_dict(labeled[0], "labeled[0]", student_names)
        replay_labels = np.asarray(labeled[1]).reshape(-1).astype("int32")
        if len(replay_labels) != replay_count:
            raise ValueError(f"`labeled` has {replay_count} examples but {len(replay_labels)} labels.")
    teacher_probabilities = np.asarray(teacher.predict({n: new[n] for n in teacher_names}, batch_size=256, verbose=0),
                                       np.float64)
    student_inputs = {n: new[n] for n in student_names}
    student.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=student_head.loss,
                    metrics=student_head.metrics())
    done = []
    for round_number in range(rounds):
        probabilities = teacher_probabilities
        if round_number > 0:  # co-training: both models' evidence (a product of experts)
            probabilities = probabilities * np.asarray(student.predict(student_inputs, batch_size=256, verbose=0))
            probabilities = probabilities / np.maximum(probabilities.sum(axis=1, keepdims=True), 1e-30)
        confidence, pseudo = probabilities.max(axis=1), probabilities.argmax(axis=1)
        positions = np.flatnonzero(confidence >= threshold)
        if len(positions) == 0:
            whose = "the teacher's" if round_number == 0 else f"round {round_number + 1}'s (teacher and student)"
            raise ValueError(f"No example of `inputs` reaches threshold={threshold}: {whose} highest confidence is "
                             f"{confidence.max():.3f}. Lower `threshold`, or train the teacher further.")
        x = {n: np.repeat(student_inputs[n][positions], repeat, axis=0) for n in student_names}
        y = np.repeat(pseudo[positions], repeat).astype("int32")
        if replay is not None:
            x = {n: np.concatenate([replay[n], x[n]]) for n in student_names}
            y = np.concatenate([replay_labels, y])
        dataset = (tf.data.Dataset.from_tensor_slices((x, y))
                   .shuffle(len(y), seed=seed + round_number, reshuffle_each_iteration=True).batch(batch_size))
        history = student.fit(dataset, epochs=epochs, verbose=verbose, shuffle=False)  # the dataset shuffles (seeded)
        done.append({"selected": len(positions), "history": history.history})
    return {"selected": len(positions), "examples": int(count), "positions": positions,
            "labels": pseudo[positions], "confidence": confidence, "history": history.history, "rounds": done}
