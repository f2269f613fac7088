"""INT8 quantization: thin adapters over onnxruntime.quantization (and, later, neural-compressor)."""

from compress.quant.ort import float_ops, quantize_onnx

__all__ = ["quantize_onnx", "float_ops"]
