#!/usr/bin/env bash
# One set-up command for a fresh machine: `bash install.sh` installs into the active Python.
# Order matters: torch first (the local CPU wheel here, the CUDA build on a GPU machine), then the
# pinned stack, then torchvision without dependencies (an unpinned one pulls a CUDA torch).
set -euo pipefail
cd "$(dirname "$0")"
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
$PY -c "import torch, torchvision, transformers, lightning; print('installed: torch', torch.__version__, '| torchvision', torchvision.__version__, '| transformers', transformers.__version__, '| lightning', lightning.__version__)"
