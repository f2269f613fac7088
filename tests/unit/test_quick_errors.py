"""The one-line `compress` command: a failed INT8 check ends with the flags that get past it, not with
recipe keys the command line does not have; other commands' errors are left as they are."""

import pytest

from compress import cli
from compress.errors import ArtifactError

REFUSAL = ArtifactError("quantize: 'student_pruned': INT8 agreement with FP32 0.9778 < min_agreement 0.98", fix="try tune: {...}")


@pytest.mark.parametrize(("command", "fix"), [("compress", "add --no-int8 --resume"), ("quantize", "try tune: {...}")])
def test_an_int8_refusal_names_the_command_line_way_out(monkeypatch, capsys, tmp_path, command, fix):
    def refuse(pipeline, args):
        raise REFUSAL

    monkeypatch.setattr(cli, "_execute", refuse)
    argv = ["compress", "--model", "mlp", "--task", "digits"] if command == "compress" else ["quantize", "m.onnx", "--task", "digits"]
    assert cli.main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edge-compress: error: quantize: 'student_pruned': INT8 agreement") and fix in err and "\n" not in err


def test_the_auto_student_is_sized_to_the_teacher():
    """The largest student of the family with at most a quarter of the teacher's parameters; the smallest
    when the teacher is tinier than that; the template's default without a teacher size."""
    from compress.starter import STUDENTS, student_for

    assert student_for((1, 8, 8)) == STUDENTS["conv"]
    assert student_for((1, 8, 8), 10, 170_000) == STUDENTS["conv"]  # 11,974 params: 1/14 of the teacher
    assert student_for((1, 8, 8), 10, 30_000)["width"] == 8  # 6,066 params; width 12 would be 1/2.5
    assert student_for((1, 8, 8), 10, 2_000)["width"] == 4  # none is a quarter: the smallest
    assert student_for((10,), 1, 5_000)["hidden"] == [32, 16]  # 1,050 params; [64, 32] has 3,114


def test_compress_counts_the_teachers_parameters_for_its_student(tmp_path, monkeypatch):
    import yaml

    (tmp_path / "tiny.py").write_text("from torch import nn\ndef net():\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["compress", "--model", "tiny:net", "--task", "digits", "--write-recipe", "c.yaml"]) == 0
    student = yaml.safe_load((tmp_path / "c.yaml").read_text())["stages"][1]["distill"]["model"]
    assert student["arch"] == "mobilenet_v2" and student["width"] == 4  # a 650-parameter teacher gets the smallest
