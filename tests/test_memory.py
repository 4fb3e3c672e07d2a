"""`python -m vlmrl.tools.memory` (issue 9): the per-model table of what fits where runs and counts parameters
right."""
import subprocess
import sys

import pytest


def test_memory_table_runs_and_counts_the_published_parameters():
    proc = subprocess.run([sys.executable, "-m", "vlmrl.tools.memory"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split() for line in proc.stdout.splitlines()[2:]]
    params = {r[0]: float(r[1].rstrip("B")) for r in rows}
    assert params["qwen2_vl_2b"] == pytest.approx(2.21, abs=0.01)     # Qwen2-VL-2B: 2.2B (model card)
    assert params["qwen2_vl_7b"] == pytest.approx(8.29, abs=0.01)     # Qwen2-VL-7B: 8.3B (model card)
    fits = {(r[0], int(r[2]), int(r[3])): r[-1] == "yes" for r in rows}
    assert not fits[("qwen2_vl_7b", 0, 4096)] and fits[("qwen2_vl_7b", 3, 8192)]  # 7B needs ZeRO at 80 GB
    assert fits[("qwen2_vl_2b", 0, 4096)]
