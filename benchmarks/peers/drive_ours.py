"""edge-compress's INT8 path: the recipe `edge-compress quantize FP32.onnx --task T --cpu auto --calibration
calib.npy` builds (compress.cli_quick.quantize_recipe: load -> quantize -> benchmark -> report), run through
its first two stages only (the peers' comparison does its own measuring). Runs in the project's environment;
the run folder is `--run-dir`, the INT8 file is copied to OUT."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from _common import parse, run


def main() -> None:
    def extra(parser) -> None:
        parser.add_argument("--task", required=True)
        parser.add_argument("--run-dir", type=Path, required=True, help="where the run folder goes (replaced)")
        parser.add_argument("--cpu", default="auto")

    args = parse(__doc__, extra)

    def work() -> dict:
        from compress.cli_quick import quantize_recipe
        from compress.pipeline import Pipeline
        from compress.recipe import parse_recipe

        flags = argparse.Namespace(model=args.fp32, task=args.task, mode="static", cpu=args.cpu, threads=1, calibration=args.calibration)
        recipe = quantize_recipe(flags)
        recipe["stages"] = recipe["stages"][:2]  # load, quantize
        spec, stages = parse_recipe(recipe, source="benchmarks/peers")
        pipeline = Pipeline(stages, task=spec.task, name=spec.name, seed=spec.seed, target=spec.target)
        record = pipeline.run(args.run_dir, overwrite=True, quiet=True).model("model_int8")
        shutil.copy(args.run_dir / record.onnx, args.out)
        fmt = record.quant.format
        return {
            "recipe": "edge-compress quantize --cpu " + args.cpu,
            "format": fmt.label,
            "deploy_cpu": record.quant.deployed.cpu,
            "reduce_range": fmt.reduce_range,
            "per_channel": fmt.per_channel,
        }

    run("edge-compress", ["edge-compress", "onnxruntime"], work)


if __name__ == "__main__":
    main()
