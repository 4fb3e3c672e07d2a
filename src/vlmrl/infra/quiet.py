"""A clean console: third-party tips, progress bars of file I/O and deprecation noise off.

What a newcomer reads is our `[vlmrl]` lines, Lightning's training progress bar and errors. Called
once by each entry point before anything is built.
"""
from __future__ import annotations

import logging
import os
import warnings

NOISY_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)",          # torch pytree deprecation inside Lightning
    r".*gradient_checkpointing_enable. is deprecated",
    r".*is_gradient_checkpointing. is deprecated",
    r".*does not have many workers",                 # our loaders hold in-memory records
    r".*torch\.distributed\.reduce_op. is deprecated",  # vLLM's triton_utils on import (rollout=vllm)
    # rollout=vllm: vLLM initialises torch.distributed (gloo, world size 1) in this process, so Lightning asks
    # for sync_dist on epoch-level logs; ours pass it already (lit/greedy.py), a no-op on one process
    r".*It is recommended to use .self\.log\(.*sync_dist=True",
)


def quiet_third_party() -> None:
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")   # rollout=vllm: engine start-up INFO / tips off
    logging.getLogger("vllm").setLevel(logging.ERROR)      # and what vLLM logs before it configures its loggers
    for pattern in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    # "GPU available: False", "TPU available", LitLogger tips, "`Trainer.fit` stopped: ..." are INFO
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero", "lightning.pytorch",
                 "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights", "Writing model shards"
    # datasets reads these when it is imported: "Generating train split", "Casting the dataset" bars
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("DATASETS_VERBOSITY", "error")
