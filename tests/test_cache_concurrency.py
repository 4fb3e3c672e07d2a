"""Two real processes building the same cached start checkpoint at once: both succeed, one builds."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vlmrl.starts.start import build_once

ROOT = Path(__file__).resolve().parents[1]

# What `python cold_start.py +scale=smoke` does, minus Hydra's CLI: build (or find) the tiny instruct model.
BUILDER = f"""
import sys
sys.path.insert(0, {str(ROOT / 'tests')!r})
from conftest import compose_cfg
from vlmrl.infra.quiet import quiet_third_party
from vlmrl.starts.start import start_checkpoint
quiet_third_party()
print("[test] start checkpoint:", start_checkpoint(compose_cfg(["+scale=smoke"])), flush=True)
"""


def _launch(env):
    return subprocess.Popen([sys.executable, "-c", BUILDER], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_two_processes_building_one_cache_share_one_build(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "VLMRL_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    procs = [_launch(env), _launch(env)]
    outputs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        outputs.append(out)
        assert proc.returncode == 0, out[-3000:]

    paths = {line.split(": ", 1)[1] for out in outputs for line in out.splitlines()
             if line.startswith("[test] start checkpoint:")}
    assert len(paths) == 1, outputs
    path = Path(paths.pop())
    assert (path / "config.json").exists()
    builds = [out for out in outputs if "instruct build, phase 0: SFT" in out]  # run_sft's log line
    assert len(builds) == 1, outputs
    assert sum("reusing it" in out for out in outputs) >= 1, outputs  # the other one waited and reused
    entries = sorted(p.name for p in cache.iterdir())   # tiny, instruct, and the instruct build's run dirs
    assert len(entries) == 3 and entries[2].endswith(".runs") and all(not n.endswith(".lock") and ".tmp" not in n for n in entries), entries


def test_a_waiter_builds_when_the_holder_fails(tmp_path):
    """The lock is released on failure and its file removed; the next builder builds."""
    target = tmp_path / "stage"

    def fail(out):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        build_once(target, fail)
    assert build_once(target, lambda out: (out / "config.json").write_text("{}")) == target
    assert [p.name for p in tmp_path.iterdir()] == ["stage"]
