"""The command line as a user runs it: real processes, exit codes, one-line errors."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO


def cli(*args, cwd=REPO, timeout=120):
    return subprocess.run([sys.executable, "-m", "compress", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def test_help_teaches_commands_and_exit_codes():
    result = cli("--help")
    assert result.returncode == 0
    for word in ("run", "validate", "stages", "--resume", "exit codes"):
        assert word in result.stdout


def test_validate_ok_and_errors_exit_2_with_one_line(write_recipe, tiny_recipe):
    ok = cli("validate", *sorted((REPO / "pipelines").glob("*.yaml")))
    assert ok.returncode == 0 and "digits_edge.yaml: ok" in ok.stdout
    tiny_recipe["stages"][0]["train"]["epoch"] = 3
    bad = cli("validate", write_recipe(tiny_recipe))
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr
    assert "stages[0].train.epoch: unknown key; did you mean 'epochs'?" in bad.stderr
    tiny_recipe["stages"][0] = {"trian": {}}
    bad = cli("validate", write_recipe(tiny_recipe))
    assert bad.returncode == 2 and "unknown stage 'trian'; did you mean 'train'?" in bad.stderr
    missing = cli("validate", "nope.yaml")
    assert missing.returncode == 2 and "recipe 'nope.yaml' does not exist" in missing.stderr


def test_stages_lists_every_stage_with_fields():
    result = cli("stages", "--json")
    listing = json.loads(result.stdout)
    assert {"train", "distill", "export", "benchmark", "report"} <= set(listing)
    assert listing["distill"]["fields"]["temperature"]["default"] == 4.0  # typed JSON values, not Python reprs
    assert listing["prune"]["fields"]["target"]["default"] == {"kind": "ratio", "value": 0.5, "batch_size": 32}
    assert listing["prune"]["fields"]["name"]["default"] is None and not listing["prune"]["fields"]["name"]["required"]


@pytest.mark.slow
def test_run_prints_paths_refuses_to_clobber_and_resumes(write_recipe, tiny_recipe, tmp_path):
    recipe, out = write_recipe(tiny_recipe), tmp_path / "run"
    first = cli("run", recipe, "--out", out, "--quiet")
    assert first.returncode == 0, first.stderr
    assert f"ONNX: {out}/export/student.onnx" in first.stdout and f"report: {out}/report/report.md" in first.stdout
    again = cli("run", recipe, "--out", out)
    assert again.returncode == 2 and "already holds a run" in again.stderr and "--resume" in again.stderr
    resumed = cli("run", recipe, "--out", out, "--resume", "--quiet")
    assert resumed.returncode == 0 and "reused stages: train, distill, export, benchmark, report" in resumed.stdout


def _run_until_distill_has_trained(recipe, out, **popen) -> subprocess.Popen:
    """Start `run` in a subprocess and return once distill has finished an epoch (its checkpoint exists)."""
    proc = subprocess.Popen([sys.executable, "-m", "compress", "run", str(recipe), "--out", str(out), "--quiet"], cwd=REPO, **popen)
    deadline = time.monotonic() + 90
    while not (out / "distill" / ".work" / "train_state.pt").is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "the run ended before it could be stopped during distill"
    return proc


@pytest.mark.slow
def test_killed_during_distill_resumes_from_its_last_epoch(write_recipe, tiny_recipe, tmp_path):
    tiny_recipe["stages"][1]["distill"]["epochs"] = 400  # long enough to be killed in the middle
    recipe, out = write_recipe(tiny_recipe), tmp_path / "run"
    proc = _run_until_distill_has_trained(recipe, out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stages = [s["id"] for s in json.loads((out / "manifest.json").read_text())["stages"]]
    assert stages == ["train"]
    teacher_sha = json.loads((out / "manifest.json").read_text())["stages"][0]["outputs"]["train/teacher.pt"]

    resumed = cli("run", recipe, "--out", out, "--resume", "--quiet", timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert "reused stages: train\n" in resumed.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(s["id"], s["status"]) for s in manifest["stages"]] == [
        ("train", "reused"),
        ("distill", "done"),
        ("export", "done"),
        ("benchmark", "done"),
        ("report", "done"),
    ]
    assert manifest["stages"][0]["outputs"]["train/teacher.pt"] == teacher_sha
    assert manifest["stages"][1]["inputs"]["train/teacher.pt"] == teacher_sha
    student = manifest["stages"][1]["models"]["student"]["training"]
    assert student["resumed_after_epoch"] >= 1, "distill continued from its last finished epoch, not from scratch"
    assert [h["epoch"] for h in student["history"]] == list(range(1, 401))
    assert list(manifest["stages"][1]["outputs"]) == ["distill/student.pt"], "no epoch checkpoint or attempt marker is left"


@pytest.mark.parametrize("flags", [("--resume", "--overwrite")])
def test_resume_and_overwrite_exclude_each_other(flags, write_recipe, tiny_recipe):
    result = cli("run", write_recipe(tiny_recipe), *flags)
    assert result.returncode == 2 and "not allowed with argument" in result.stderr


@pytest.mark.slow
def test_sigterm_stops_a_run_like_ctrl_c_and_it_resumes(write_recipe, tiny_recipe, tmp_path):
    tiny_recipe["stages"][1]["distill"]["epochs"] = 400
    recipe, out = write_recipe(tiny_recipe), tmp_path / "run"
    proc = _run_until_distill_has_trained(recipe, out, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == (
        "edge-compress: terminated (SIGTERM); finished stages are kept, run again with --resume to continue"
    )
    resumed = cli("run", recipe, "--out", out, "--resume", "--quiet", timeout=180)
    assert resumed.returncode == 0 and "reused stages: train\n" in resumed.stdout, resumed.stderr
    student = json.loads((out / "manifest.json").read_text())["stages"][1]["models"]["student"]["training"]
    assert student["resumed_after_epoch"] >= 1


def test_a_piped_run_logs_plain_lines_not_progress_bars(write_recipe, tiny_recipe, tmp_path):
    """Outside a terminal (a CI log), each training task gives a few plain lines: no carriage returns, no
    line of bar redraws (they were 9-14k characters each), no matplotlib font-cache chatter."""
    tiny_recipe["stages"][1]["distill"]["epochs"] = 10
    stages = tiny_recipe["stages"]  # the whole chain's stages, so each one's lines are in the log
    prune = {"prune": {"model": "student", "target": {"kind": "ratio", "value": 0.25}, "finetune": {"epochs": 0, "final_epochs": 1}}}
    tiny_recipe["stages"] = [*stages[:2], prune, stages[2], {"quantize": {"models": ["student"]}}, *stages[3:]]
    result = cli("run", write_recipe(tiny_recipe), "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert "\r" not in log and max(len(line) for line in log.splitlines()) <= 300
    epochs = [line for line in result.stderr.splitlines() if line.startswith("  distill student: ")]
    assert epochs[0].startswith("  distill student: 2/10 epochs, loss ") and epochs[-1].startswith("  distill student: 10/10 epochs")
    assert len(epochs) == 5 and "fontManager" not in log


def test_plain_progress_lines_follow_the_work():
    from compress.progress import PlainProgress

    lines = []
    bar = PlainProgress(range(12), desc="fit", unit="epoch", total=None, quiet=False)
    bar._line = lambda: lines.append(bar.done) or setattr(bar, "shown", bar.done)
    for _ in bar:
        bar.set_postfix(loss="0.1")
    bar.close()
    assert lines == [2, 4, 6, 8, 10, 12]


def test_validate_reports_every_mistake_of_every_file_and_exits_2_once(write_recipe, tiny_recipe):
    tiny_recipe["seed"] = -1
    tiny_recipe["stages"][0]["train"]["epoch"] = 3
    tiny_recipe["stages"][1]["distill"]["temperature"] = -2
    bad, other = write_recipe(tiny_recipe), write_recipe({**tiny_recipe, "seed": 0, "stages": [{"trian": {}}]}, "other.yaml")
    result = cli("validate", bad, other)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert all(line.startswith("edge-compress: error: ") for line in lines), lines
    for fragment in (
        "seed: Input should be greater than or equal to 0",
        "train.epoch: unknown key; did you mean 'epochs'",
        "temperature must be > 0",
    ):
        assert sum(fragment in line and str(bad) in line for line in lines) == 1, (fragment, lines)
    assert any(str(other) in line and "trian" in line for line in lines) and len(lines) == 4
    run = cli("run", bad, "--out", bad.parent / "run")
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1 and "(and 2 more)" in run.stderr


def test_the_recipe_schema_accepts_every_shipped_recipe_and_catches_a_typo():
    import jsonschema
    import yaml

    result = cli("schema", "recipe")
    assert result.returncode == 0, result.stderr
    validator = jsonschema.Draft202012Validator(json.loads(result.stdout))
    recipes = sorted((REPO / "pipelines").glob("*.yaml"))
    assert len(recipes) >= 5
    for path in recipes:
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path
    typo = yaml.safe_load((REPO / "pipelines" / "digits_edge.yaml").read_text())
    typo["stages"][0]["train"]["epoch"] = 3
    assert list(validator.iter_errors(typo))
    typo["stages"][0] = {"trian": {}}
    assert list(validator.iter_errors(typo))


def test_every_command_takes_the_log_options(write_recipe, tiny_recipe, tmp_path):
    from compress.cli import _parser

    parser, _ = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, command in commands.items():
        options = {o for action in command._actions for o in action.option_strings}
        assert {"--log-level", "-v", "--verbose", "-q", "--quiet"} <= options, name
    quiet = cli("run", write_recipe(tiny_recipe), "--out", tmp_path / "run", "--log-level", "warning")
    assert quiet.returncode == 0 and "[1/" not in quiet.stderr and "report:" in quiet.stdout


def test_packaged_recipes_are_listed_and_run_by_name_from_any_folder(tmp_path):
    listing = cli("recipes", cwd=tmp_path)
    assert listing.returncode == 0 and listing.stdout.startswith("acrobot_policy ")
    assert "digits_edge            Digits (scikit-learn's 8x8 images), the whole chain: a residual CNN teacher" in listing.stdout
    ok = cli("validate", "digits_edge", "mnist1d_int8.yaml", cwd=tmp_path)
    assert ok.returncode == 0 and "digits_edge: ok (7 stages" in ok.stdout, ok.stderr
    missing = cli("validate", "digits_egde", cwd=tmp_path)
    assert missing.returncode == 2 and "name a packaged recipe: acrobot_policy" in missing.stderr and "digits_edge" in missing.stderr
    (tmp_path / "digits_edge").mkdir()  # a folder of that name here: the user's path wins, with its own error
    assert "is a folder" in cli("validate", "digits_edge", cwd=tmp_path).stderr


def test_the_one_line_quantize_command_writes_the_recipe_it_runs(tmp_path):
    from compress.deploy import export_onnx

    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    export_onnx(model, torch.randn(2, 1, 8, 8), tmp_path / "my model.onnx", opset=17, exporter="legacy")
    written = cli("quantize", tmp_path / "my model.onnx", "--task", "digits", "--cpu", "x86-avx2", "--write-recipe", tmp_path / "q.yaml")
    assert written.returncode == 0 and (tmp_path / "q.yaml").is_file(), written.stderr
    assert cli("validate", tmp_path / "q.yaml").returncode == 0
    text = (tmp_path / "q.yaml").read_text()
    assert "name: my_model_int8" in text and "cpu: x86-avx2" in text and "- quantize:" in text
    missing = cli("quantize", tmp_path / "nope.onnx", "--task", "digits", cwd=tmp_path)
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1 and "nope.onnx" in missing.stderr


def test_init_writes_a_starter_recipe_that_validates_and_never_overwrites(tmp_path):
    import jsonschema
    import yaml

    made = cli("init", "my recipe.yaml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "my recipe.yaml").read_text()
    assert text.startswith("# A starter recipe") and "name: my_recipe" in text and "- prune:" in text and "- quantize:" in text
    ok = cli("validate", "my recipe.yaml", cwd=tmp_path)
    assert ok.returncode == 0 and "7 stages" in ok.stdout, ok.stderr
    schema = json.loads(cli("schema", "recipe").stdout)
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(yaml.safe_load(text)))
    again = cli("init", "my recipe.yaml", cwd=tmp_path)
    assert again.returncode == 2 and "already exists; nothing was written" in again.stderr
    assert (tmp_path / "my recipe.yaml").read_text() == text
    own = cli("init", "own.yaml", "--task", "mydata:make_task", "--teacher", "mymodels:big", "--checkpoint", "big.pt", cwd=tmp_path)
    assert own.returncode == 0
    loaded = yaml.safe_load((tmp_path / "own.yaml").read_text())
    assert loaded["task"] == {"factory": "mydata:make_task"}
    assert loaded["stages"][0] == {"load": {"name": "teacher", "model": {"factory": "mymodels:big", "checkpoint": "big.pt"}}}


USER_MODEL = """
import torch.nn as nn


def make_net():
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 96, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, 10),
    )
"""


def test_the_one_line_compress_command_runs_the_whole_chain_on_your_model(tmp_path):
    import yaml

    torch = pytest.importorskip("torch")
    (tmp_path / "mymodels.py").write_text(USER_MODEL)
    sys.path.insert(0, str(tmp_path))
    try:
        import mymodels

        torch.save(mymodels.make_net().state_dict(), tmp_path / "net.pt")
    finally:
        sys.path.remove(str(tmp_path))
    flags = ["--model", "mymodels:make_net", "--checkpoint", "net.pt", "--task", "digits", "--epochs", "1"]
    written = cli("compress", *flags, "--write-recipe", "chain.yaml", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    recipe = yaml.safe_load((tmp_path / "chain.yaml").read_text())
    assert recipe["name"] == "make_net_edge" and [next(iter(s)) for s in recipe["stages"]] == [
        "load", "distill", "prune", "export", "quantize", "benchmark", "report",
    ]  # fmt: skip
    teacher = recipe["stages"][0]["load"]["model"]
    assert teacher == {"factory": "mymodels:make_net", "checkpoint": str(tmp_path.resolve() / "net.pt")}
    student = recipe["stages"][1]["distill"]["model"]
    assert student["arch"] == "mobilenet_v2" and student["width"] == 12  # images, a 57k teacher: the template's full-size CNN student
    assert recipe["stages"][4]["quantize"] == {"models": ["student_pruned"]}
    run = cli("compress", *flags, "-q", cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "student_pruned_int8" in run.stdout and (tmp_path / "runs/make_net_edge/report/report.html").is_file()
    assert "teacher" in run.stdout and (tmp_path / "runs/make_net_edge/quantize/student_pruned_int8.onnx").is_file()
    tabular = cli("compress", "--model", "mlp", "--task", "diabetes", "--no-int8", "--prune", "0", "--write-recipe", "d.yaml", cwd=tmp_path)
    assert tabular.returncode == 0, tabular.stderr
    stages = [next(iter(s.items())) for s in yaml.safe_load((tmp_path / "d.yaml").read_text())["stages"]]
    assert [name for name, _ in stages] == ["train", "distill", "export", "benchmark", "report"]
    assert stages[1][1]["model"]["arch"] == "mlp" and stages[1][1]["loss"] == "mse"  # feature vectors, regression
    bad = cli("compress", "--model", "mymodels:make_net", "--task", "digit", cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "digit" in bad.stderr


def test_a_missed_acceptance_gate_exits_1_with_a_junit_failure_naming_it(tmp_path, write_recipe, tiny_recipe):
    from xml.etree import ElementTree as ET

    tiny_recipe["acceptance"] = {"max_metric_drop": 1.0, "min_param_reduction": 1000, "min_speedup": {4: 1.0e-3}}
    missed = cli("run", write_recipe(tiny_recipe), "--out", tmp_path / "run", cwd=tmp_path)
    assert missed.returncode == 1, missed.stderr
    assert "recommended: student (" in missed.stdout and "acceptance: FAILED" in missed.stdout
    assert "  FAIL  fewer parameters: wanted >= 1000x, measured " in missed.stdout
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "run" / "acceptance.xml").iter("testcase")}
    assert set(cases) == {"accuracy drop", "speedup at batch 4", "fewer parameters"}
    failure = cases["fewer parameters"].find("failure")
    assert failure is not None and "student: fewer parameters: wanted >= 1000x, measured" in failure.get("message")
    assert cases["accuracy drop"].find("failure") is None and cases["speedup at batch 4"].find("failure") is None
    report = (tmp_path / "run" / "report" / "report.md").read_text()
    assert "fewer parameters" in report  # the report shows the gates the run was judged on
    tiny_recipe["acceptance"]["min_param_reduction"] = 2  # the same run judged again: nothing retrained
    met = cli("run", write_recipe(tiny_recipe), "--out", tmp_path / "run", "--resume", cwd=tmp_path)
    assert met.returncode == 0 and "acceptance: passed" in met.stdout and "reused stages: train, distill, export, benchmark" in met.stdout
    tiny_recipe["acceptance"]["reference"] = "teachr"
    bad = cli("validate", write_recipe(tiny_recipe), cwd=tmp_path)
    assert bad.returncode == 2 and "acceptance.reference: no model 'teachr'" in bad.stderr and "did you mean 'teacher'" in bad.stderr
