"""The ``mmzoo`` command: ``mmzoo train``, ``mmzoo list``, ``mmzoo predict``, ``mmzoo export-tflite``.

Bad options or names print a one-line message and exit with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from mmzoo.cli import export_tflite as tflite_cli, predict

# Subcommands implemented in their own modules: name -> (module with add_parser/run, its user-error type).
_RUNNERS = {
    "predict": (predict, predict.PredictError),
    "export-tflite": (tflite_cli, tflite_cli.ExportTFLiteError),
}


def _parser():
    parser = argparse.ArgumentParser(prog="mmzoo", description="Multimodal model zoo (Keras 3 / TensorFlow).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("list", help="list the zoo's models")
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
        help="tf.distribute strategy; multi_worker reads TF_CONFIG, every worker runs the same command "
        "(default: %(default)s)",
    )
    train.add_argument(
        "--precision", default="float32", choices=("float32", "mixed_float16", "mixed_bfloat16"),
        help="Keras dtype policy (default: %(default)s)",
    )
    train.add_argument(
        "--steps-per-execution", type=int, default=1, metavar="N", help="steps per tf.function call (default: 1)"
    )
    train.add_argument("--backup-dir", default=None, metavar="DIR", help="BackupAndRestore folder (resume after a kill)")
    train.add_argument("--jit-compile", action="store_true", help="force XLA compilation")
    train.add_argument("--deterministic", action="store_true", help="enable TensorFlow op determinism")
    train.add_argument("--tiny", action="store_true", help="the zoo's tiny version of the model (smoke runs, tests)")
    predict.add_parser(sub)
    tflite_cli.add_parser(sub)
    return parser


def main(argv=None):
    """Entry point of the ``mmzoo`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from mmzoo import zoo

    if args.command == "list":
        for name in zoo.list_models():
            print(f"{name:34s} {zoo.get(name).summary}")
        return 0
    if args.command in _RUNNERS:
        module, error_type = _RUNNERS[args.command]
        try:
            return module.run(args)
        except error_type as error:
            print(f"mmzoo {args.command}: error: {error}", file=sys.stderr)
            return 2
    from mmzoo.training import train

    try:
        result = train.train_and_evaluate(
            args.model, epochs=args.epochs, batch_size=args.batch_size, output_dir=args.output_dir,
            seed=args.seed, verbose=0 if args.quiet else 2, strategy=args.strategy, precision=args.precision,
            steps_per_execution=args.steps_per_execution, backup_dir=args.backup_dir,
            jit_compile=True if args.jit_compile else None, deterministic=args.deterministic,
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


if __name__ == "__main__":
    sys.exit(main())
