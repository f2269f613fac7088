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
