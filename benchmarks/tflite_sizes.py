"""TFLite file size and accuracy change per quantization, on the small AV-digits model of the TFLite tests.

Usage: python benchmarks/tflite_sizes.py [--epochs 12]

Trains ``av_digits_concat`` (filters 8/16, hidden 32, seed 0) on the embedded
train split as ``tests/serving/test_tflite.py`` does, converts it with each
``quantize`` setting and prints the file size, the largest output difference
from Keras on 50 test examples, and the accuracy change against the float
model on the 250 test pairs.
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()

    import keras

    import mmzoo
    from mmzoo.datasets import av_digits_recipe as av_digits
    from mmzoo.serving import tflite

    keras.utils.set_random_seed(0)
    arrays = av_digits.load_arrays()
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
    model = mmzoo.build("av_digits_concat", image_filters=(8, 16), audio_filters=(8, 16), hidden=(32,))
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=0)
    print("| quantize | size KB | max abs diff vs Keras (50 ex.) | accuracy change, points (250 ex.) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for quantize in (None, "float16", "dynamic", "int8"):
            path = tflite.export_tflite(model, os.path.join(folder, f"{quantize}.tflite"), quantize=quantize,
                                        representative_data=x_train if quantize == "int8" else None)
            first = tflite.compare_with_float(model, path, {k: v[:50] for k, v in x_test.items()}, y_test[:50])
            full = tflite.compare_with_float(model, path, x_test, y_test)
            print(f"| {quantize or 'none (float32)'} | {os.path.getsize(path) / 1024:.0f} | "
                  f"{first['max_abs_diff']:.1e} | {full['accuracy_change']:+.1f} "
                  f"(float {full['float_accuracy']:.3f}) |", flush=True)


if __name__ == "__main__":
    main()
