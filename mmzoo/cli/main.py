"""The ``mmzoo`` command: ``train``, ``list``, ``fit``, ``evaluate``, ``compare``, ``predict``, ``explain``,
``export-tflite``, ``index``, ``search``.

Arguments are parsed before TensorFlow is imported, so ``--help`` and bad
options answer at once. TensorFlow's own log (its C++ log, the CUDA probing
lines printed on machines without a GPU) stays quiet unless ``--verbose`` is
given or ``MMZOO_TF_LOG=1`` is set; a ``TF_CPP_MIN_LOG_LEVEL`` set by the
user is kept. Bad options or names print a one-line message and exit with
code 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile

from mmzoo.cli import explain as explain_cli
from mmzoo.cli import export_tflite as tflite_cli
from mmzoo.cli import fit as fit_cli
from mmzoo.cli import predict
from mmzoo.cli import search as search_cli

# Subcommands implemented in their own modules: name -> (module with run(args), its user-error type).
_RUNNERS = {
    "fit": (fit_cli, fit_cli.FitCommandError),
    "evaluate": (fit_cli, fit_cli.FitCommandError),
    "compare": (fit_cli, fit_cli.FitCommandError),
    "predict": (predict, predict.PredictError),
    "explain": (explain_cli, explain_cli.ExplainError),
    "export-tflite": (tflite_cli, tflite_cli.ExportTFLiteError),
    "index": (search_cli, search_cli.SearchError),
    "search": (search_cli, search_cli.SearchError),
}
# Lines TensorFlow writes to stderr while it is imported, before its log level applies
# (absl's pre-initialisation notice and the CUDA probing of a machine without a GPU).
_IMPORT_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|cudart_stub\.cc|Could not find cuda drivers"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|computation_placer\.cc|cpu_feature_guard\.cc"
    r"|^To enable the following instructions:.*rebuild TensorFlow|oneDNN custom operations are on"
    r"|TF-TRT Warning|cuda_(dnn|fft|blas)\.cc|cuInit|failed call to cuInit"
)
_VERBOSE_HELP = "also show TensorFlow's own log messages (C++ log, CUDA probing); or set MMZOO_TF_LOG=1"


def _add_verbose(parser, default):
    parser.add_argument("--verbose", action="store_true", default=default, help=_VERBOSE_HELP)
    return parser


def _parser():
    parser = argparse.ArgumentParser(prog="mmzoo", description="Multimodal model zoo (Keras 3 / TensorFlow).")
    _add_verbose(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    listing = sub.add_parser("list", help="list the zoo's models (--details: overrides and weight counts)")
    listing.add_argument(
        "--details", action="store_true",
        help="per model: its inputs, weight count and accepted overrides with their defaults (builds each "
        "model once; the full-size BERT/ResNet models take several seconds each)",
    )
    listing.add_argument("--tiny", action="store_true", help="with --details: weight counts of the tiny versions")
    train = sub.add_parser(
        "train", help="train a zoo model on its bundled dataset, evaluate, plot and export (default: AV-digits)"
    )
    train.add_argument("--model", default="av_digits_concat", help="zoo model name (default: %(default)s)")
    train.add_argument("--epochs", type=int, default=15, help="training epochs (default: %(default)s)")
    train.add_argument("--batch-size", type=int, default=32, help="batch size (default: %(default)s)")
    train.add_argument("--output-dir", default="saved_models", help="export/plot folder (default: %(default)s)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    train.add_argument(
        "--strategy", default="auto", choices=("auto", "default", "mirrored", "tpu", "multi_worker"),
        help="tf.distribute strategy; multi_worker needs TF_CONFIG, every worker runs the same command "
        "(default: %(default)s)",
    )
    train.add_argument(
        "--precision", default="float32", choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
        help="Keras dtype policy; auto: bf16 on a TPU or a CPU with native bf16, float16 on a GPU with tensor "
             "cores, else float32 (default: %(default)s)",
    )
    train.add_argument(
        "--steps-per-execution", type=int, default=1, metavar="N",
        help="steps per tf.function call; must divide an epoch's steps on one machine (default: %(default)s)",
    )
    train.add_argument(
        "--backup-dir", default=None, metavar="DIR",
        help="backup folder (local or gs://): the same command rerun after a kill resumes there",
    )
    train.add_argument("--jit-compile", action="store_true", help="force XLA compilation")
    train.add_argument(
        "--cache-frontend", action="store_true",
        help="compute the audio front end (log-mel) once and cache it; the export keeps it (one machine)",
    )
    train.add_argument("--deterministic", action="store_true", help="enable TensorFlow op determinism")
    train.add_argument("--tiny", action="store_true", help="the zoo's tiny version of the model (smoke runs, tests)")
    fit_cli.add_parsers(sub)
    predict.add_parser(sub)
    explain_cli.add_parser(sub)
    tflite_cli.add_parser(sub)
    search_cli.add_parsers(sub)
    for subparser in sub.choices.values():
        # Also accepted after the subcommand; SUPPRESS keeps the value given before it.
        _add_verbose(subparser, argparse.SUPPRESS)
    return parser


def _wants_tf_log(args):
    return bool(args.verbose) or os.environ.get("MMZOO_TF_LOG", "").strip().lower() in ("1", "true", "yes", "on")


def _import_tensorflow(verbose):
    """Imports TensorFlow with its C++ log quiet (unless ``verbose``), before any mmzoo module needs it.

    ``TF_CPP_MIN_LOG_LEVEL`` must be set before the import (a value the user
    set is kept). A few lines are written to the stderr file descriptor while
    the native libraries load, before that level applies; they are captured
    and dropped, and anything else written meanwhile is passed on.
    """
    if "tensorflow" in sys.modules:
        return
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        import tensorflow  # noqa: F401, PLC0415

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf  # noqa: PLC0415

            tf.get_logger().setLevel("ERROR")
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            sys.stderr.write("".join(line for line in text.splitlines(True) if not _IMPORT_NOISE.search(line)))
            sys.stderr.flush()


def _list(args):
    from mmzoo import zoo  # imports TensorFlow  # noqa: PLC0415
    from mmzoo.zoo import registry  # noqa: PLC0415

    if not args.details:
        for name in zoo.list_models():
            print(f"{name:34s} {zoo.get(name).summary}")
        return 0
    kind = " (tiny version)" if args.tiny else ""
    for record in registry.describe(tiny=args.tiny, count_params=False):
        params = registry.get(record["name"]).count_params(tiny=args.tiny)
        print(f"{record['name']}: {record['summary']}")
        print(f"    inputs: {', '.join(record['modalities'])}; weights{kind}: {params:,}")
        print("    overrides: " + ", ".join(f"{k}={v!r}" for k, v in record["overrides"].items()), flush=True)
    return 0


def _train(args):
    from mmzoo import zoo  # imports TensorFlow  # noqa: PLC0415
    from mmzoo.training import train  # noqa: PLC0415

    try:
        result = train.train_and_evaluate(
            args.model, epochs=args.epochs, batch_size=args.batch_size, output_dir=args.output_dir,
            seed=args.seed, verbose=0 if args.quiet else 2, strategy=args.strategy, precision=args.precision,
            steps_per_execution=args.steps_per_execution, backup_dir=args.backup_dir,
            jit_compile=True if args.jit_compile else None, deterministic=args.deterministic,
            cache_frontend=args.cache_frontend,
            **(zoo.get(args.model).tiny if args.tiny else {}),
        )
    except ValueError as error:
        print(f"mmzoo train: error: {error}", file=sys.stderr)
        return 2
    test = ", ".join(f"{k}={v:.4f}" for k, v in result["test"].items())
    print(f"test: {test}")
    for kind, path in result["paths"].items():
        print(f"wrote {kind}: {path}")
    if not result["chief"]:
        print("non-chief worker: outputs written to a temporary folder and removed")
    print(f"weights sha256: {result['weights_sha256']}")
    return 0


def main(argv=None):
    """Entry point of the ``mmzoo`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _import_tensorflow(_wants_tf_log(args))
    if args.command == "list":
        return _list(args)
    if args.command in _RUNNERS:
        module, error_type = _RUNNERS[args.command]
        try:
            return module.run(args)
        except error_type as error:
            print(f"mmzoo {args.command}: error: {error}", file=sys.stderr)
            return 2
    return _train(args)


if __name__ == "__main__":
    sys.exit(main())
