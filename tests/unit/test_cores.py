"""Default thread counts follow what the process may use (issue 18): the affinity mask and the cgroup
CPU quota, not the host's CPU count; the fingerprint says which limit applied."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from compress.cores import available_cores


def test_a_cgroup_v2_quota_limits_the_cores(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # docker run --cpus 1.5
    cores = available_cores(tmp_path)
    assert cores.count == 1  # whole CPUs, rounded down: 2 threads on 1.5 CPUs would be throttled
    assert "cgroup CPU quota is 1.5 CPUs" in cores.why or len(os.sched_getaffinity(0)) == 1


def test_no_quota_and_cgroup_v1_quotas(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert "cgroup" not in available_cores(tmp_path).why
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cores(v1).count == 1


@pytest.mark.skipif(shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"), reason="needs Linux taskset")
def test_one_allowed_cpu_gives_one_thread_and_the_fingerprint_says_why():
    code = (
        "import json; from compress.bench.runners import TargetSpec; from compress.bench.fingerprint import fingerprint;"
        "f = fingerprint(); print(json.dumps([TargetSpec().num_threads, f['cores_available'], f['cores_why']]))"
    )
    cpu = sorted(os.sched_getaffinity(0))[0]
    out = subprocess.run(["taskset", "-c", str(cpu), sys.executable, "-c", code], capture_output=True, text=True, check=True)
    threads, available, why = json.loads(out.stdout)
    assert threads == available == 1
    if (os.cpu_count() or 1) > 1:
        assert why.startswith("CPU affinity allows 1 of the host's")
