"""Olive's static quantization pass (`OnnxStaticQuantization`, its defaults: QDQ, int8 activations and
weights, per-tensor, MinMax, ORT's quantization pre-processing) run as an Olive workflow, calibrated
through an Olive data config on the calibration samples (`_olive_data.py`, batch size 1)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from _common import input_name, parse, run

HERE = Path(__file__).resolve().parent


def workflow(args, work: Path) -> dict:
    data = {
        "name": "calib",
        "user_script": str(HERE / "_olive_data.py"),
        "load_dataset_config": {
            "type": "npy_calibration",
            "params": {"path": str(args.calibration.resolve()), "input_name": input_name(args.fp32)},
        },
        "dataloader_config": {"batch_size": 1},
    }
    return {
        "input_model": {"type": "ONNXModel", "model_path": str(args.fp32.resolve())},
        "data_configs": [data],
        "passes": {"quantization": {"type": "OnnxStaticQuantization", "data_config": "calib"}},
        "evaluate_input_model": False,
        "log_severity_level": 3,
        "cache_dir": str(work / "cache"),
        "output_dir": str(work / "out"),
    }


def main() -> None:
    args = parse(__doc__)

    def work() -> dict:
        from olive.workflows import run as olive_run

        with tempfile.TemporaryDirectory() as tmp:
            output = olive_run(workflow(args, Path(tmp)))
            best = output.get_best_candidate()
            shutil.copy(best.model_path, args.out)
        return {
            "pass": "OnnxStaticQuantization",
            "config": "defaults (precision int8, activation_type int8, QDQ, per_channel False, MinMax, quant_preprocess True)",
        }

    run("olive-ai", ["olive-ai", "onnxruntime"], work)


if __name__ == "__main__":
    main()
