"""Scaling out: Lightning strategies from the `strategy` config group, and what GRPO needs around them.

* `single` (Lightning "auto"), `ddp`, `fsdp`, `deepspeed_zero2`, `deepspeed_zero3`: Lightning's own
  strategy classes, instantiated from `strategy.lightning`; `trainer.devices` x `trainer.num_nodes`
  processes. Lightning launches the local processes itself (re-running train.py with the same
  Hydra overrides and the rank-0 run dir), or takes ranks from Slurm (SLURMEnvironment) when the
  job runs one task per device (conf/hydra/launcher/slurm.yaml).
* Data parallelism over prompts: each rank takes its contiguous slice of the step's B prompts and
  samples all G completions of each, so every group stays on one rank and the group-normalised
  advantages are those of one process. Losses are means over completions and DDP averages
  gradients over ranks, so equal slices (B divisible by the world size, checked in config.py) give
  the single-process update. Logged step metrics are all-reduced means over ranks.
* Frozen parameters (`model.freeze`, vlmrl/optim.py) have requires_grad False before the strategy wraps the
  policy: DDP leaves them out of its gradient buckets, FSDP gets use_orig_params=True (its flat parameters
  may then mix frozen and trainable weights), DeepSpeed's optimizer only holds the trainable ones.
* Sharded weights (FSDP, ZeRO-3) are gathered for HF `generate` (`full_params_for_generate`); the
  frozen reference model is sharded / offloaded by `prepare_reference` (strategy.reference keys).
  Both are written for CUDA and not run here: Lightning 2.6 refuses DeepSpeed on CPU, and FSDP
  needs the CUDA launcher in practice (docs/scale.md says what was run).
"""
from __future__ import annotations

import contextlib

import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf


def is_global_zero() -> bool:
    """Rank 0 of the job, from the launcher's environment (RANK / LOCAL_RANK / SLURM_PROCID), before any
    process group exists: run-dir files are written by one process only."""
    return getattr(rank_zero_only, "rank", 0) == 0


def make_strategy(cfg: DictConfig):
    """The `strategy=` option as Lightning's strategy argument: "auto" for `single`, else an instance."""
    node = cfg.strategy.lightning
    if not isinstance(node, DictConfig):
        return node
    kwargs = {}
    if cfg.strategy.get("wrap_layers"):  # FSDP: one shard unit (and checkpointing unit) per transformer block
        layers = {get_class(name) for name in cfg.strategy.wrap_layers}
        kwargs["auto_wrap_policy"] = layers
        if cfg.model.gradient_checkpointing:
            kwargs["activation_checkpointing_policy"] = layers
    if cfg.strategy.name == "fsdp" and cfg.model.get("freeze"):
        # a unit whose flat parameter mixes frozen and trainable weights (the root: embeddings, lm_head, the
        # vision merger) needs the original parameters kept (Lightning 2.6's default, made explicit here)
        if node.get("use_orig_params", True) is False:
            raise ValueError(f"strategy.lightning.use_orig_params=false with model.freeze={list(cfg.model.freeze)}: "
                             "FSDP needs use_orig_params=true when a shard unit mixes frozen and trainable weights")
        kwargs["use_orig_params"] = True
    return instantiate(node, **kwargs)


def rank_slice(records: list, rank: int, world: int) -> list:
    """This rank's contiguous share of a step's prompts (len(records) divisible by world)."""
    if len(records) % world:
        raise ValueError(f"{len(records)} prompts per step do not split over {world} ranks")
    share = len(records) // world
    return records[rank * share:(rank + 1) * share]


def reduce_mean(strategy, metrics: dict) -> dict:
    """{key: float} averaged over ranks in one all-reduce (a no-op in one process)."""
    if strategy is None or strategy.world_size == 1:
        return {k: float(v) for k, v in metrics.items()}
    keys = sorted(metrics)
    values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=strategy.root_device)
    reduced = strategy.reduce(values, reduce_op="mean")
    return dict(zip(keys, reduced.tolist()))


@contextlib.contextmanager
def full_params_for_generate(strategy, policy):
    """Full (unsharded) weights for HF `generate` under FSDP / ZeRO-3; nothing to do otherwise.

    FSDP: `FullyShardedDataParallel.summon_full_params` on the wrapped root (no writeback: generation
    does not change weights). ZeRO-3: `deepspeed.zero.GatheredParameters` over the policy's
    parameters (modifier_rank None: read-only). Each rank then holds the whole model for the
    duration of generation, as TRL's `unwrap_model_for_generation` does; at 7B in bf16 that is
    ~16.6 GB per GPU (python -m vlmrl.tools.memory)."""
    name = type(strategy).__name__ if strategy is not None else ""
    if name == "FSDPStrategy":
        from torch.distributed.fsdp import FullyShardedDataParallel

        with FullyShardedDataParallel.summon_full_params(strategy.model, writeback=False, recurse=True):
            yield
    elif name == "DeepSpeedStrategy" and strategy.config.get("zero_optimization", {}).get("stage") == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(policy.parameters()), modifier_rank=None):
            yield
    else:
        yield


def prepare_reference(ref, strategy, reference: DictConfig | None):
    """The frozen reference model placed for the strategy (`strategy.reference`: shard, offload).

    Default: moved whole to the device. FSDP with shard: wrapped in FSDP with the policy's wrap
    layers (offload: CPU offload of its parameters). ZeRO-3 with shard: an inference-only DeepSpeed
    engine of stage 3 (offload: parameters on CPU), as TRL prepares its reference model. With LoRA
    there is no reference model at all (the adapter is disabled instead)."""
    if not isinstance(ref, torch.nn.Module):  # LoRA's AdapterDisabled: the policy itself, placed by Lightning
        return ref
    opts = OmegaConf.to_container(reference) if isinstance(reference, DictConfig) else dict(reference or {})
    name = type(strategy).__name__ if strategy is not None else ""
    device = strategy.root_device if strategy is not None else torch.device("cpu")
    if not opts.get("shard") or name not in ("FSDPStrategy", "DeepSpeedStrategy"):
        return ref.to(device).eval().requires_grad_(False)
    if name == "FSDPStrategy":
        from torch.distributed.fsdp import CPUOffload, FullyShardedDataParallel

        return FullyShardedDataParallel(ref.eval(), auto_wrap_policy=strategy.kwargs.get("auto_wrap_policy"),
                                        cpu_offload=CPUOffload(offload_params=bool(opts.get("offload"))),
                                        device_id=device if device.type == "cuda" else None)
    import deepspeed

    config = {"train_micro_batch_size_per_gpu": 1, "bf16": {"enabled": next(ref.parameters()).dtype == torch.bfloat16},
              "zero_optimization": {"stage": 3, **({"offload_param": {"device": "cpu"}} if opts.get("offload") else {})}}
    engine, *_ = deepspeed.initialize(model=ref, config=config)
    engine.module.eval().requires_grad_(False)
    return engine.module
