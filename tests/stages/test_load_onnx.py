"""An ONNX file exported elsewhere comes into a run with `load: {model: {onnx: file}}` and goes through
quantize, benchmark and report; stages that need its PyTorch model refuse it before anything runs."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from compress.errors import DataError, RecipeError
from compress.pipeline import Pipeline
from compress.stages import Benchmark, Distill, Export, Load, Quantize, Report

pytestmark = pytest.mark.slow

TIMING = {"warmup": 1, "rounds": 2, "min_iters": 5, "min_time_s": 0}


@pytest.fixture(scope="module")
def foreign_onnx(tmp_path_factory):
    """A digits classifier trained and exported the way another project would: its own layers, its own
    input and output names, no edge-compress involved."""
    from compress.data.spec import TaskSpec

    task = TaskSpec(name="digits").load()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        for x, y in task.loader("train", 64, shuffle=True):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    path = tmp_path_factory.mktemp("elsewhere") / "digits_classifier.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), torch.randn(1, 1, 8, 8), path, dynamo=False, input_names=["pixels"], output_names=["scores"],
            dynamic_axes={"pixels": {0: "n"}, "scores": {0: "n"}}, opset_version=17,
        )  # fmt: skip
    return path


def test_an_onnx_file_is_quantized_benchmarked_and_reported(foreign_onnx, tmp_path):
    stages = [
        Load(name="teacher", model={"onnx": str(foreign_onnx)}),
        Quantize(calibration={"samples": 128}),
        Benchmark(batch_sizes=[1, 8], timing=TIMING),
        Report(),
    ]
    manifest = Pipeline(stages, task="digits").run(tmp_path / "run", quiet=True)
    models = manifest.records()
    teacher, int8 = models["teacher"], models["teacher_int8"]
    assert teacher.kind == "fp32" and teacher.checkpoint is None and teacher.onnx == "load/teacher.onnx"
    assert (tmp_path / "run" / "load" / "teacher.onnx").read_bytes() == foreign_onnx.read_bytes(), "the run keeps its own copy"
    assert teacher.params == 64 * 48 + 48 + 48 * 10 + 10 and teacher.macs is None
    accuracy = teacher.score("accuracy", runtime="onnxruntime").value
    assert accuracy > 0.85, accuracy
    assert int8.kind == "int8" and int8.parent == "teacher" and int8.quant.deployed.deployed >= 0.98
    for model in (teacher, int8):
        assert model.bench["ort-cpu"].latency_ms["8"].p50 > 0 and model.score("accuracy") is not None
    report = (tmp_path / "run" / "report" / "report.md").read_text()
    assert "teacher_int8" in report and "teacher" in report


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        (
            [Distill(model={"arch": "mlp", "hidden": [8]}, epochs=1)],
            "model 'teacher' was brought as an ONNX file; this stage needs its PyTorch model",
        ),
        ([Export(models=["teacher"])], "model 'teacher' was brought as an ONNX file"),
        ([Export()], "no FP32 model to export at this point"),
        ([Quantize(backend="inc")], "model 'teacher' was brought as an ONNX file"),
    ],
)
def test_stages_that_need_the_pytorch_model_refuse_it_before_anything_runs(foreign_onnx, tmp_path, stages, message):
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Pipeline([Load(name="teacher", model={"onnx": str(foreign_onnx)}), *stages], task="digits")


def test_a_file_that_does_not_fit_the_task_is_one_line(foreign_onnx, tmp_path):
    with pytest.raises(DataError, match=r"takes inputs of shape \(1, 8, 8\) per sample, the task's are \(10,\)"):
        Pipeline([Load(name="teacher", model={"onnx": str(foreign_onnx)})], task="diabetes").run(tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists(), "a new run that fails before finishing a stage leaves nothing"


def test_an_onnx_model_takes_no_other_keys():
    with pytest.raises(ValueError, match="an 'onnx' model takes no other keys"):  # pydantic's ValidationError
        Load(model={"onnx": "m.onnx", "hidden": [8]})


def test_an_old_opset_file_with_constant_weights_is_counted_and_quantized(foreign_onnx, tmp_path):
    """Files from other exporters (paddle2onnx: opset 11, weights as Constant nodes): parameters are counted
    from the Constant nodes and the file is raised to opset 13 for per-channel QDQ."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(foreign_onnx)).graph.initializer}
    nodes, previous = [helper.make_node("Flatten", ["pixels"], ["h0"])], "h0"
    for i, (w, b) in enumerate(
        zip([v for v in weights.values() if v.ndim == 2], [v for v in weights.values() if v.ndim == 1], strict=True)
    ):
        nodes += [
            helper.make_node("Constant", [], [f"w{i}"], value=numpy_helper.from_array(w.T.copy(), f"w{i}")),
            helper.make_node("Constant", [], [f"b{i}"], value=numpy_helper.from_array(b, f"b{i}")),
            helper.make_node("MatMul", [previous, f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"h{i + 1}"]),
        ]
        previous = f"h{i + 1}"
        if i == 0:
            nodes.append(helper.make_node("Relu", [previous], ["r0"]))
            previous = "r0"
    graph = helper.make_graph(
        nodes,
        "old",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 1, 8, 8])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["n", 10])],
    )
    path = tmp_path / "old.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    stages = [Load(name="teacher", model={"onnx": str(path)}), Quantize(calibration={"samples": 128})]
    models = Pipeline(stages, task="digits").run(tmp_path / "run", quiet=True).records()
    assert models["teacher"].params == 64 * 48 + 48 + 48 * 10 + 10
    assert models["teacher_int8"].quant.deployed.deployed >= 0.98 and models["teacher_int8"].quant.integer_ops


def _digits_inputs(n: int = 128):
    from compress.data.spec import TaskSpec

    return TaskSpec(name="digits").load().example_input(n, split="train").numpy()


def test_an_npz_calibration_file_is_read_by_the_graph_input_name(foreign_onnx, tmp_path):
    path = tmp_path / "calibration.npz"
    np.savez(path, pixels=_digits_inputs())
    stages = [Load(name="teacher", model={"onnx": str(foreign_onnx)}), Quantize(calibration={"file": str(path), "samples": 100})]
    int8 = Pipeline(stages, task="digits").run(tmp_path / "run", quiet=True).records()["teacher_int8"]
    assert int8.quant.calibration["file"] == str(path) and int8.quant.calibration["samples"] == 100
    assert int8.quant.deployed.deployed >= 0.98


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"input": 0}, r"calibration.npz holds 'input'; the model takes one input, 'pixels'"),
        (
            {"pixels": 0, "labels": 0},
            r"calibration.npz holds 'pixels', 'labels'; the model takes one input; numpy.savez\('calibration.npz', <graph input name>=inputs\)",
        ),
        ({"pixels": 1}, r"calibration.npz has shape \(128, 64\), the task's inputs are \(1, 8, 8\)"),
    ],
)
def test_an_npz_that_does_not_fit_the_graph_input_is_one_line(foreign_onnx, tmp_path, arrays, message):
    x = _digits_inputs()
    path = tmp_path / "calibration.npz"
    np.savez(path, **{name: x.reshape(len(x), -1) if flat else x for name, flat in arrays.items()})
    stages = [Load(name="teacher", model={"onnx": str(foreign_onnx)}), Quantize(calibration={"file": str(path)})]
    with pytest.raises(DataError, match=message) as err:
        Pipeline(stages, task="digits").run(tmp_path / "run", quiet=True)
    assert len(str(err.value).splitlines()) == 1 and "numpy.save" in str(err.value)
