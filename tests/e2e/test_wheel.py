"""A pip user's first minute (issue 18): the wheel built from this repository, installed into a fresh
virtual environment (torch and the other dependencies reused from this one, not downloaded), run from an
empty folder: the recipes ship inside it and run by name."""

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The `edge-compress` command of a fresh environment holding only the wheel."""
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist")],
        capture_output=True, text=True, cwd=root,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = (root / "dist").glob("edge_compress-*.whl")
    env = root / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))
    # this environment's packages as a plain path: its editable install of the repository (a .pth hook) stays out
    (site / "reuse.pth").write_text(sysconfig.get_path("purelib") + "\n")
    python = env / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr
    return env / "bin" / "edge-compress"


def test_the_wheel_holds_the_recipes_and_runs_one_by_name_from_an_empty_folder(installed, tmp_path):
    where = subprocess.run(
        [installed.parent / "python", "-c", "import compress; print(compress.__file__)"], capture_output=True, text=True, cwd=tmp_path
    )
    assert str(installed.parent.parent) in where.stdout, "the fresh environment imports the wheel, not the repository"
    listing = subprocess.run([installed, "recipes"], capture_output=True, text=True, cwd=tmp_path)
    assert listing.returncode == 0 and "digits_edge" in listing.stdout and "mnist1d_int8" in listing.stdout
    run = subprocess.run([installed, "run", "digits_edge", "--quiet"], capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert run.returncode in (0, 1), run.stderr
    assert (tmp_path / "runs" / "digits_edge" / "report" / "report.html").is_file()
    # a speed gate judges measured time, which a loaded machine can push below its bound (tests assert no wall-clock
    # times); every other gate must pass, and the exit code must follow the gates
    failed = _failed_gates(tmp_path / "runs" / "digits_edge" / "acceptance.xml")
    assert all(name.startswith("speedup at batch") for name in failed), failed
    assert (run.returncode == 1) == bool(failed) and "recommended: " in run.stdout, run.stdout
    assert f"acceptance: {'FAILED' if failed else 'passed'}" in run.stdout, run.stdout
    student = tmp_path / "runs" / "digits_edge" / "export" / "student.onnx"
    quick = subprocess.run([installed, "quantize", student, "--task", "digits", "-q"], capture_output=True, text=True, cwd=tmp_path)
    assert quick.returncode == 0, quick.stderr
    assert "model_int8" in quick.stdout and (tmp_path / "runs" / "student_int8" / "quantize" / "model_int8.onnx").is_file()


def _failed_gates(junit: Path) -> list[str]:
    """The names of the gates the JUnit file reports as failed."""
    import xml.etree.ElementTree as ET

    return [case.get("name", "") for case in ET.parse(junit).iter("testcase") if case.find("failure") is not None]
