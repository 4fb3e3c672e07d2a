"""Let the CUDA-only torchvision wheel import on a CPU-only torch (an install step, see install.sh).

PyPI has no CPU build of torchvision, yet Qwen2-VL's processor needs its video processor and
that needs torchvision. `torchvision==0.28.0` matches torch 2.13 but registers fake kernels for
`torchvision::nms` / `qnms`, which do not exist without its compiled ops, so `import torchvision`
fails. Declaring the two schemas first makes the import work: image transforms run, compiled ops
(nms, roi_align, video decoding) stay unavailable. Nothing here runs on a CUDA torch.

install.sh copies this file into site-packages as the standalone module `vlmrl_torchvision_cpu_shim` and
adds a `.pth` line that calls `install()` at interpreter start. `install()` only registers a meta-path hook,
so startup does not import torch. It stays at the top of the package, not in infra/, because it is an install
step rather than run code: install.sh copies it from this path, and machines already set up run that copy.
"""
import importlib.abc
import sys

_LIBRARY = None  # keeps the torch.library fragment alive


def declare_missing_ops() -> None:
    global _LIBRARY
    import torch

    if _LIBRARY is not None or torch.version.cuda is not None:
        return
    library = torch.library.Library("torchvision", "FRAGMENT")
    for name in ("nms", "qnms"):
        try:
            library.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:  # already declared (real ops present)
            pass
    _LIBRARY = library


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision":
            sys.meta_path.remove(self)
            declare_missing_ops()
        return None


def install() -> None:
    if "torchvision" not in sys.modules and not any(isinstance(f, _BeforeTorchvision) for f in sys.meta_path):
        sys.meta_path.insert(0, _BeforeTorchvision())
