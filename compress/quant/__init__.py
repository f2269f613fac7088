"""INT8 quantization: thin adapters over onnxruntime.quantization, quantization-aware training that
exports to ONNX Runtime's QDQ form, and accuracy-driven tuning (neural-compressor lives in `inc`)."""

from compress.quant.ort import CALIBRATION_METHODS, float_ops, quantize_onnx

__all__ = ["quantize_onnx", "float_ops", "CALIBRATION_METHODS"]
