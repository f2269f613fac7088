"""INT8 quantization: thin adapters over onnxruntime.quantization, quantization-aware training that
exports to ONNX Runtime's QDQ form, and accuracy-driven tuning (neural-compressor lives in `inc`)."""

from compress.quant.census import Coverage, integer_coverage
from compress.quant.formats import Int8Format, choose_format
from compress.quant.ort import CALIBRATION_METHODS, dynamic_op_types, float_ops, quantize_onnx

__all__ = [
    "quantize_onnx",
    "float_ops",
    "dynamic_op_types",
    "CALIBRATION_METHODS",
    "Int8Format",
    "choose_format",
    "integer_coverage",
    "Coverage",
]
