"""neural-compressor (INC 3.x) PT2E static quantization of the PyTorch model behind the FP32 file, as its
documentation shows it: `neural_compressor.torch.export.export`, `prepare(model, StaticQuantConfig())` (its
defaults: int8 symmetric per-channel weights, uint8 asymmetric per-tensor activations, MinMax), the
calibration samples run through the prepared model, `convert`, then torch.onnx's dynamo exporter (INC has
no ONNX export of its own for PT2E). The PyTorch model is rebuilt from the run folder that exported the
FP32 file (`--run-dir`, `--model`); this driver runs in the project's environment."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

from _common import load_calibration, parse, run


def pytorch_model(run_dir: Path, name: str):
    from compress.data.builtin import TASKS
    from compress.manifest import Manifest
    from compress.models.spec import build_model

    manifest = Manifest.load(run_dir / "manifest.json")
    record, task = manifest.model(name), manifest.recipe["task"]
    spec = record.spec.model_copy(update={"checkpoint": str(run_dir / record.checkpoint)})
    return build_model(spec, TASKS.get(task["name"])(**task.get("options", {}))).eval()


def main() -> None:
    def extra(parser) -> None:
        parser.add_argument("--run-dir", type=Path, required=True, help="the run folder that exported the FP32 file")
        parser.add_argument("--model", required=True, help="the model's name in that run")

    args = parse(__doc__, extra)

    def work() -> dict:
        import torch
        from neural_compressor.torch.export import export
        from neural_compressor.torch.quantization import StaticQuantConfig, convert, prepare

        x = torch.from_numpy(load_calibration(args.calibration))
        model, batch = pytorch_model(args.run_dir, args.model), torch.export.Dim("batch")
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # the exporter prints progress
            warnings.simplefilter("ignore")
            graph = export(model, example_inputs=(x[:2],), dynamic_shapes=({0: batch},))
            prepared = prepare(graph, StaticQuantConfig())
            for chunk in x.split(32):
                prepared(chunk)
            quantized = convert(prepared)
            program = torch.onnx.export(
                quantized,
                (x[:2],),
                str(args.out),
                dynamo=True,
                dynamic_shapes=({0: batch},),
                input_names=["input"],
                output_names=["output"],
            )
        opset = next((o.version for o in program.model_proto.opset_import if o.domain == ""), None)
        return {"config": "StaticQuantConfig() defaults", "export": "torch.onnx.export(dynamo=True)", "opset": opset}

    run("neural-compressor", ["neural-compressor", "torch", "onnxscript"], work)


if __name__ == "__main__":
    main()
