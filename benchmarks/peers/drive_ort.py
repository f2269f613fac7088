"""ONNX Runtime's `quantize_static` with its default settings (QDQ, int8 activations and weights, per-tensor,
MinMax, no pre-processing), fed by a CalibrationDataReader over the calibration samples, one per call."""

from __future__ import annotations

from _common import input_name, load_calibration, parse, run


def main() -> None:
    args = parse(__doc__)

    def work() -> dict:
        from onnxruntime.quantization import CalibrationDataReader, quantize_static

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                name, x = input_name(args.fp32), load_calibration(args.calibration)
                self.feeds = iter([{name: x[i : i + 1]} for i in range(len(x))])

            def get_next(self):
                return next(self.feeds, None)

        quantize_static(str(args.fp32), str(args.out), Reader())
        return {
            "call": "quantize_static(fp32, out, reader)",
            "defaults": "QDQ, QInt8 activations, QInt8 weights, per_channel=False, MinMax",
        }

    run("onnxruntime", ["onnxruntime"], work)


if __name__ == "__main__":
    main()
