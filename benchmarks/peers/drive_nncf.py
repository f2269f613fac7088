"""NNCF post-training quantization with its ONNX backend: `nncf.quantize(onnx_model, nncf.Dataset(...))` with
its defaults (preset performance: symmetric int8 weights per channel and symmetric activations, fast bias
correction, target device ANY), `subset_size` set to the number of calibration samples, one per step."""

from __future__ import annotations

from _common import input_name, load_calibration, parse, run


def main() -> None:
    args = parse(__doc__)

    def work() -> dict:
        import nncf
        import onnx

        x, name = load_calibration(args.calibration), input_name(args.fp32)
        model = onnx.load(str(args.fp32))
        dataset = nncf.Dataset(list(x), lambda sample: {name: sample[None]})
        quantized = nncf.quantize(model, dataset, subset_size=len(x))
        onnx.save(quantized, str(args.out))
        return {
            "call": "nncf.quantize(model, nncf.Dataset(samples, transform), subset_size=N)",
            "defaults": "preset PERFORMANCE, fast_bias_correction True, target_device ANY",
        }

    run("nncf", ["nncf", "onnx", "onnxruntime"], work)


if __name__ == "__main__":
    main()
