"""``mmzoo index`` and ``mmzoo search``: find images by text (or by image) with an exported dual encoder.

``mmzoo index MODEL_DIR --images FOLDER_OR_MANIFEST --output INDEX_DIR``
embeds a collection with the export's ``embed_image_raw`` signature, in
batches, and saves a ``mmzoo.retrieval.Index`` (embeddings, ids, paths and
the model folder). ``mmzoo search INDEX_DIR --text "..."`` (or ``--image
FILE``, or ``--queries FILE`` with one text query per line) embeds the
queries with the same model and prints the ranked ids, paths and scores;
``--json`` prints one JSON line per query, in order.

Example::

    mmzoo index saved_models/retrieval --images photos/ --output saved_models/photos_index
    mmzoo search saved_models/photos_index --text "a smiling face" --top-k 5
    mmzoo search saved_models/photos_index --queries queries.txt --json
"""

from __future__ import annotations

import json
import os
import sys

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MANIFEST_EXTENSIONS = (".csv", ".jsonl", ".json")


class SearchError(ValueError):
    """A user error of ``mmzoo index`` / ``mmzoo search`` (one line)."""


def add_parsers(subparsers):
    """Adds the ``index`` and ``search`` subcommands to an ``argparse`` subparsers object."""
    index = subparsers.add_parser("index", help="embed a folder or manifest of images with an exported dual encoder")
    index.add_argument("model", help="an exported mmzoo dual encoder (a SavedModel with embed_image_raw)")
    index.add_argument("--images", required=True, help="a folder of images, or a .csv/.jsonl manifest")
    index.add_argument("--output", required=True, help="the index folder to write")
    index.add_argument("--column", default="image", help="manifest column of image paths (default: %(default)s)")
    index.add_argument("--id-column", default=None, help="manifest column of ids (default: the image path)")
    index.add_argument("--batch-size", type=int, default=64, help="images per call (default: %(default)s)")
    search = subparsers.add_parser("search", help="rank an index's images for a text or an image query")
    search.add_argument("index", help="an index folder written by `mmzoo index`")
    query = search.add_mutually_exclusive_group(required=True)
    query.add_argument("--text", help="a text query")
    query.add_argument("--image", help="an image file as the query")
    query.add_argument("--queries", help="a file of text queries, one per line")
    search.add_argument("--top-k", type=int, default=10, help="results per query (default: %(default)s)")
    search.add_argument("--json", action="store_true", help="one JSON line per query: results with id, path, score")
    search.add_argument("--model", default=None, help="the dual encoder (default: the one the index was built with)")


def run(args):
    """Runs ``mmzoo index`` or ``mmzoo search`` for parsed ``args``; returns the exit code.

    Raises:
        SearchError: For a user error (the CLI prints it and exits with 2).
    """
    return _index(args) if args.command == "index" else _search(args)


def _signature(model_dir, name):
    import tensorflow as tf  # noqa: PLC0415

    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        raise SearchError(f"{model_dir}: not a SavedModel folder (no saved_model.pb)")
    signatures = tf.saved_model.load(model_dir).signatures
    if name not in signatures:
        raise SearchError(f"{model_dir}: the model has no {name} signature (it has {', '.join(sorted(signatures))}); "
                          "export a mmzoo.retrieval.DualEncoder, e.g. mmzoo.build('image_text_retrieval')")
    return signatures[name]


def _collection(args):
    """``(ids, paths)`` of the images to index."""
    import tensorflow as tf  # noqa: PLC0415

    from mmzoo import _gfile  # noqa: PLC0415
    from mmzoo.data import read_manifest  # noqa: PLC0415

    source = args.images
    if source.lower().endswith(MANIFEST_EXTENSIONS):
        try:
            manifest = read_manifest(source)
            manifest.require_columns([args.column] + ([args.id_column] if args.id_column else []), "--column")
        except (FileNotFoundError, ValueError) as error:
            raise SearchError(f"{source}: {str(error).splitlines()[0]}") from None
        paths = [manifest.path(i, args.column) for i in range(len(manifest))]
        ids = [str(manifest.value(i, args.id_column)) for i in range(len(manifest))] if args.id_column else paths
        return ids, paths
    if not tf.io.gfile.isdir(source):
        raise SearchError(f"--images: {source} is neither a folder nor a .csv/.jsonl manifest")
    ids, paths = [], []
    for folder, _, files in sorted(tf.io.gfile.walk(source)):
        for name in sorted(files):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                path = _gfile.resolve(folder, name)
                paths.append(path)
                remote = _gfile.is_remote(path)
                ids.append(path[len(source):].lstrip("/") if remote else os.path.relpath(path, source))
    if not paths:
        raise SearchError(f"--images: {source} holds no {', '.join(IMAGE_EXTENSIONS)} files")
    return ids, paths


def _embed(fn, key, values, names):
    """Embeddings of ``values`` (a list of bytes/str) by signature ``fn``; a failure names the file or query."""
    import tensorflow as tf  # noqa: PLC0415

    try:
        return fn(**{key: tf.constant(values)})[f"{key}_embedding"].numpy()
    except tf.errors.InvalidArgumentError:
        pass
    for value, name in zip(values, names):  # find the one that fails, and name it
        try:
            fn(**{key: tf.constant([value])})
        except tf.errors.InvalidArgumentError as error:
            reason = str(getattr(error, "message", error)).strip().splitlines()[0]
            raise SearchError(f"{name}: cannot embed it: {reason}") from None
    raise SearchError(f"{names[0]}..{names[-1]}: the batch could not be embedded")


def _index(args):
    import numpy as np  # noqa: PLC0415

    from mmzoo import _gfile  # noqa: PLC0415
    from mmzoo.retrieval import Index  # noqa: PLC0415

    if args.batch_size <= 0:
        raise SearchError(f"--batch-size must be a positive integer. Received: {args.batch_size}")
    fn = _signature(args.model, "embed_image_raw")
    ids, paths = _collection(args)
    if len(set(ids)) != len(ids):
        raise SearchError("--id-column: the ids repeat; every image needs its own id")
    chunks = []
    for start in range(0, len(paths), args.batch_size):
        batch = paths[start : start + args.batch_size]
        try:
            contents = [_gfile.read_bytes(p) for p in batch]
        except OSError as error:
            raise SearchError(f"{error.filename or batch[0]}: cannot read it ({error.strerror})") from None
        chunks.append(_embed(fn, "image", contents, batch))
        print(f"\rembedded {min(start + args.batch_size, len(paths))}/{len(paths)} images", end="", file=sys.stderr,
              flush=True)
    print(file=sys.stderr)
    model = args.model if _gfile.is_remote(args.model) else os.path.abspath(args.model)
    index = Index(metadata={"model": model})
    index.add(np.concatenate(chunks), ids=ids, paths=paths)
    index.save(args.output)
    print(f"wrote {args.output}: {len(index)} images, {index.dim}-d embeddings")
    return 0


def _queries(args):
    """The text queries (``None`` for an image query)."""
    if args.text is not None:
        if not args.text.strip():
            raise SearchError("--text: the query is empty")
        return [args.text]
    if args.queries is None:
        return None
    from mmzoo import _gfile  # noqa: PLC0415

    try:
        texts = [line.strip() for line in _gfile.open_text(args.queries).read().splitlines()]
    except OSError as error:
        raise SearchError(f"--queries: cannot read {args.queries} ({error.strerror})") from None
    texts = [t for t in texts if t]  # blank lines are skipped
    if not texts:
        raise SearchError(f"--queries: {args.queries} holds no query (one text query per line)")
    return texts


def _search(args):
    from mmzoo import _gfile  # noqa: PLC0415
    from mmzoo.retrieval import Index  # noqa: PLC0415

    if args.top_k <= 0:
        raise SearchError(f"--top-k must be a positive integer. Received: {args.top_k}")
    try:
        index = Index.load(args.index)
    except (FileNotFoundError, ValueError) as error:
        raise SearchError(str(error).splitlines()[0]) from None
    model = args.model or index.metadata.get("model")
    if not model:
        raise SearchError(f"{args.index}: the index names no model; pass --model MODEL_DIR")
    texts = _queries(args)
    if texts is not None:
        embeddings = _embed(_signature(model, "embed_text_raw"), "text", texts, [f"query {q!r}" for q in texts])
        labels = texts
    else:
        try:
            contents = _gfile.read_bytes(args.image)
        except OSError as error:
            raise SearchError(f"--image: cannot read {args.image} ({error.strerror})") from None
        embeddings = _embed(_signature(model, "embed_image_raw"), "image", [contents], [args.image])
        labels = [args.image]
    try:
        results = index.search(embeddings, top_k=args.top_k)
    except ValueError as error:
        raise SearchError(f"{args.index}: {error}") from None
    for label, hits in zip(labels, results):
        if args.json:
            print(json.dumps({"query": label, "results": hits}))
            continue
        print(f"{label}:")
        for rank, hit in enumerate(hits, start=1):
            print(f"  {rank:>3}. {hit['score']:.4f}  {hit['id']}  {hit['path']}")
    return 0
