"""``mmzoo fit``, ``mmzoo evaluate`` and ``mmzoo compare``: your own data from the shell.

Bad columns, unknown kinds, a label with one class, an empty split or a
folder that cannot be written: one line naming the column or file, exit code
2, before any training.

Example::

    mmzoo fit emoji.jsonl --label group --image "images/{hexcode}.png" --text annotation --text tags \\
        --test emoji_test.jsonl --epochs 20 --output-dir runs/emoji
    mmzoo evaluate runs/emoji/model emoji_test.jsonl --json
    mmzoo fit pairs.jsonl --task retrieval --image image --text caption --output-dir runs/retrieval
    mmzoo compare emoji.jsonl --label group --image "images/{hexcode}.png" --text annotation --seeds 3 \\
        --output-dir runs/compare
"""

from __future__ import annotations

import json

FUSIONS = ("auto", "concat", "add", "weighted_sum", "attention", "gated", "low_rank", "late", "ensemble")


class FitCommandError(ValueError):
    """A user error of ``mmzoo fit`` / ``evaluate`` / ``compare`` (one line)."""


def _data_arguments(parser):
    parser.add_argument("train", help="training manifest (CSV or JSONL; file paths relative to it)")
    parser.add_argument("--label", help="label column (class names, integers, floats or a|b sets); required "
                        "unless --task retrieval")
    for kind in ("image", "audio", "text", "numeric", "categorical"):
        parser.add_argument(
            f"--{kind}", action="append", default=[], metavar="COL",
            help=f"{kind} column (repeatable)" + (", or a path template like 'images/{hexcode}.png'"
                                                 if kind in ("image", "audio") else ""),
        )
    parser.add_argument("--valid", metavar="FILE", help="validation manifest (default: a stratified fraction of train)")
    parser.add_argument("--valid-fraction", type=float, default=0.1, metavar="F",
                        help="held-out fraction of train when --valid is not given (default: %(default)s)")
    parser.add_argument("--group", metavar="COL",
                        help="keep each value of this column (a speaker, a patient) on one side of the train/valid "
                        "split: validation holds out whole groups, so selection reflects new ones")
    parser.add_argument("--test", metavar="FILE", help="test manifest (evaluated once, at the end)")
    parser.add_argument("--epochs", type=int, default=30, help="most epochs; early stopping (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--image-size", type=int, metavar="PX",
        help="largest image side fed to the model (default: 64; 224 for the pretrained encoder)"
    )
    parser.add_argument(
        "--image-encoder", default="auto", choices=("auto", "efficientnet_lite0", "mobilenet_v2", "cnn"),
        help="'efficientnet_lite0' or 'mobilenet_v2': a pretrained encoder bundled with mmzoo, frozen; 'cnn': a small "
        "CNN trained from scratch; 'auto': EfficientNet-Lite0 for colour images up to 20,000 rows (default: "
        "%(default)s)"
    )
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="folder for the outputs")


def add_parsers(subparsers):
    """Adds ``fit``, ``evaluate`` and ``compare`` to an ``argparse`` subparsers object."""
    fit = subparsers.add_parser("fit", help="train, select, evaluate and export a model on your own manifest")
    _data_arguments(fit)
    fit.add_argument("--task", choices=("retrieval",),
                     help="'retrieval': each row is an image-text pair (--image COL --text COL, no --label); trains "
                     "and exports a dual encoder for `mmzoo index` / `mmzoo search`")
    fit.add_argument("--model", default="auto", help="'auto' or a zoo model name (default: %(default)s)")
    fit.add_argument("--fusion", default="auto", choices=FUSIONS, help="fusion kind (default: %(default)s)")
    fit.add_argument("--modalities", metavar="A,B", help="use only these inputs, e.g. 'text' or 'image,text'")
    fit.add_argument("--patience", type=int, default=5, metavar="N",
                     help="epochs without validation improvement before stopping (default: %(default)s)")
    fit.add_argument("--time-budget", type=float, metavar="S", help="seconds of KerasTuner search")
    fit.add_argument("--folds", type=int, metavar="K", help="also run stratified K-fold cross-validation")
    fit.add_argument("--ensemble-folds", type=int, metavar="K",
                     help="with --group and --fusion ensemble/auto: fit the ensemble's weights on K folds of "
                     "training groups it never saw, and bag the K fold models into the result")
    fit.add_argument("--tensorboard", metavar="DIR", help="TensorBoard log folder")
    fit.add_argument("--quiet", action="store_true", help="no per-epoch progress")

    evaluate = subparsers.add_parser(
        "evaluate", help="metrics of a model written by `mmzoo fit` on labelled data, or of an exported dual "
        "encoder on image-text pairs (R@1/5/10 both ways, median rank, MRR)")
    evaluate.add_argument("model", help="the SavedModel folder (DIR/model of `mmzoo fit`)")
    evaluate.add_argument("data", help="labelled manifest (CSV or JSONL)")
    evaluate.add_argument("--label", help="label column (default: the one the model was fitted on)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--output-dir", metavar="DIR", help="also write report.json and figures here")
    evaluate.add_argument("--image", metavar="COL",
                          help="for a dual-encoder export: the column of image paths (default: the one `mmzoo fit` "
                          "trained on, else 'image')")
    evaluate.add_argument("--text", metavar="COL",
                          help="for a dual-encoder export: the text column (default: the ones `mmzoo fit` trained "
                          "on, else 'text')")

    compare = subparsers.add_parser("compare", help="every single input and each fusion on one split, several seeds")
    _data_arguments(compare)
    compare.add_argument("--fusions", default="concat,attention,ensemble", metavar="A,B",
                         help="fusion kinds to compare (default: %(default)s)")
    compare.add_argument("--seeds", type=int, default=3, help="seeds per model (default: %(default)s)")


def _columns(args):
    columns = {}
    for kind in ("image", "audio", "text", "numeric", "categorical"):
        for column in getattr(args, kind):
            if column in columns:
                raise FitCommandError(f"column {column!r} is given twice (as {columns[column]} and {kind})")
            columns[column] = kind
    return columns or "auto"


def _check_numbers(args):
    for name in ("epochs", "batch_size", "seeds", "folds", "image_size", "patience"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise FitCommandError(f"--{name.replace('_', '-')} must be positive. Received: {value}")
    if getattr(args, "time_budget", None) is not None and args.time_budget <= 0:
        raise FitCommandError(f"--time-budget must be positive. Received: {args.time_budget}")


def run(args):
    """Runs ``fit`` / ``evaluate`` / ``compare`` for parsed ``args``; returns the exit code.

    Raises:
        FitCommandError: For a user error (the CLI prints it and exits with 2).
    """
    from mmzoo.training import evaluate as evaluate_lib  # noqa: PLC0415
    from mmzoo.training import fit as fit_lib  # noqa: PLC0415
    from mmzoo.training import reports  # noqa: PLC0415

    _check_numbers(args)
    try:
        if args.command == "evaluate":
            report = evaluate_lib.evaluate(args.model, args.data, label=args.label, output_dir=args.output_dir,
                                           image=args.image, text=args.text)
            text = evaluate_lib.format_retrieval_report(report) if "image_to_text_mrr" in report else (
                reports.format_report(report))
            print(json.dumps(report, default=float) if args.json else text)
            return 0
        if getattr(args, "task", None) is None and args.label is None:
            raise FitCommandError(f"mmzoo {args.command}: --label is required"
                                  + (" (or --task retrieval for image-text pairs)" if args.command == "fit" else ""))
        if args.command == "compare":
            from mmzoo.training import compare as compare_lib  # noqa: PLC0415

            table = compare_lib.compare(
                args.train, args.label, _columns(args), valid=args.valid, valid_fraction=args.valid_fraction,
                group=args.group, test=args.test, fusions=tuple(f for f in args.fusions.split(",") if f),
                seeds=args.seeds, epochs=args.epochs, batch_size=args.batch_size, image_size=args.image_size,
                image_encoder=args.image_encoder, output_dir=args.output_dir,
                seed=args.seed, verbose=1,
            )
            print(table.markdown())
            for kind, path in table.paths.items():
                print(f"wrote {kind}: {path}")
            return 0
        if args.command == "fit" and args.task == "retrieval":
            return _fit_retrieval(args, fit_lib)
        result = fit_lib.fit(
            args.train, args.label, _columns(args), valid=args.valid, valid_fraction=args.valid_fraction,
            test=args.test, model=args.model, fusion=args.fusion,
            modalities=tuple(m for m in args.modalities.split(",") if m) if args.modalities else None,
            epochs=args.epochs, batch_size=args.batch_size, patience=args.patience, image_size=args.image_size,
            image_encoder=args.image_encoder, time_budget=args.time_budget,
            folds=args.folds, group=args.group, ensemble_folds=args.ensemble_folds,
            tensorboard=args.tensorboard, output_dir=args.output_dir, seed=args.seed, verbose=0 if args.quiet else 2,
        )
    except (fit_lib.FitError, evaluate_lib.EvaluateError) as error:
        raise FitCommandError(str(error)) from None
    print(f"fusion: {result.fusion}")
    print("validation: " + reports.format_report(result.valid).replace("\n", "; "))
    if result.test is not None:
        print("test: " + reports.format_report(result.test).replace("\n", "; "))
    if result.cv is not None:
        print(f"cross-validation ({len(result.folds)} folds): see {result.report_path}")
    print(f"wrote model: {result.export_path}")
    print(f"wrote report: {result.report_path}")
    return 0


def _fit_retrieval(args, fit_lib):
    if args.label is not None:
        raise FitCommandError("--task retrieval trains on image-text pairs: it takes no --label")
    for option in ("model", "fusion", "image_encoder"):
        if getattr(args, option) != "auto":
            raise FitCommandError(f"--task retrieval trains a dual encoder: it takes no "
                                  f"--{option.replace('_', '-')}")
    if args.group is not None:
        raise FitCommandError("--task retrieval trains a dual encoder: it takes no --group")
    for option in ("modalities", "time_budget", "folds", "ensemble_folds"):
        if getattr(args, option) is not None:
            raise FitCommandError(f"--task retrieval trains a dual encoder: it takes no --{option.replace('_', '-')}")
    result = fit_lib.fit(
        args.train, columns=_columns(args), task="retrieval", valid=args.valid, valid_fraction=args.valid_fraction,
        test=args.test, epochs=args.epochs, batch_size=args.batch_size, patience=args.patience,
        image_size=args.image_size, tensorboard=args.tensorboard, output_dir=args.output_dir, seed=args.seed,
        verbose=0 if args.quiet else 2,
    )
    from mmzoo.training.evaluate import format_retrieval_report  # noqa: PLC0415

    for split in ("valid", "test"):
        report = getattr(result, split)
        if report is not None:
            print(f"{split}: " + format_retrieval_report(report).replace("\n", ";"))
    print(f"wrote model: {result.export_path}")
    print(f"wrote report: {result.report_path}")
    return 0
