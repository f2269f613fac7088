"""Optimum-onnx's ORTQuantizer with the AutoQuantizationConfig preset for this CPU's instruction set
(`--isa avx512_vnni` or `avx2`, static), calibrated with MinMax (AutoCalibrationConfig.minmax's settings)
on the calibration samples, one per step.

The calibration config is written out rather than made by AutoCalibrationConfig.minmax, which only reads
the name and size of a Hugging Face `datasets.Dataset`; the samples go to `fit` as a list of
{input name: sample} rows, which its ORTCalibrationDataReader iterates like a Dataset."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from _common import input_name, load_calibration, parse, run


def main() -> None:
    args = parse(__doc__, lambda p: p.add_argument("--isa", choices=["avx512_vnni", "avx2"], required=True))

    def work() -> dict:
        from onnxruntime.quantization import CalibrationMethod
        from optimum.onnxruntime import AutoQuantizationConfig, ORTQuantizer
        from optimum.onnxruntime.configuration import CalibrationConfig

        x, name = load_calibration(args.calibration), input_name(args.fp32)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            shutil.copy(args.fp32, folder / "model.onnx")
            quantizer = ORTQuantizer.from_pretrained(folder, file_name="model.onnx")
            qconfig = getattr(AutoQuantizationConfig, args.isa)(is_static=True)
            calib = CalibrationConfig(
                dataset_name="peers",
                dataset_config_name="npy",
                dataset_split="train",
                dataset_num_samples=len(x),
                method=CalibrationMethod.MinMax,
            )
            calib.moving_average, calib.averaging_constant = False, 0.01  # what AutoCalibrationConfig.minmax sets
            rows = [{name: sample} for sample in x]
            ranges = quantizer.fit(
                rows, calib, onnx_augmented_model_name=folder / "augmented.onnx", operators_to_quantize=qconfig.operators_to_quantize
            )
            quantizer.quantize(qconfig, folder / "out", calibration_tensors_range=ranges)
            shutil.copy(folder / "out" / "model_quantized.onnx", args.out)
        return {
            "preset": f"AutoQuantizationConfig.{args.isa}(is_static=True)",
            "format": qconfig.format.name,
            "activations": qconfig.activations_dtype.name,
            "weights": qconfig.weights_dtype.name,
            "per_channel": qconfig.per_channel,
            "reduce_range": qconfig.reduce_range,
            "calibration": "MinMax",
        }

    run("optimum-onnx", ["optimum-onnx", "optimum", "onnxruntime", "transformers"], work)


if __name__ == "__main__":
    main()
