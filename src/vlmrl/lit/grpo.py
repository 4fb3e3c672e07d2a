"""GRPO / GRPO-D as a LightningModule: the policy, a frozen reference model, and the wiring.

One training step = one rollout step s:
  B prompts (a pure function of (seed, s)) -> G completions each (stage(s) sets G and the length)
  -> rewards (plus DAPO's overlong penalty when set) -> advantages (the `advantage` group, default
  group-normalised) -> mu policy updates on the same rollouts, each the `loss` group's surrogate (default
  PPO-clip) with k3 KL weighted by beta(s) (OThink-MR1 Eq. 3-5; math in algo/). Under DDP the
  advantages are computed from every rank's rewards (all-gathered), so batch-wide estimators see the
  global batch. The mean token entropy is logged every step from the update's own forward.
With mu = 1 the old policy is the current one (ratio 1, as in R1-V); with mu > 1 the old log-probs
are those of the first update's forward, detached (the policy before any update of the step, so no
separate no-grad pass). The reference model is frozen, kept out of the checkpoint (it is the
starting checkpoint), and not loaded at all when beta(s) = 0 for every s.

Each prompt and its images go through a model once per group, not once per completion
(rollout/shared_prefix.py): in sampling, in the reference pass and in the policy's forward (the plain
forward where the shared prefix cannot be used: gradient checkpointing, sharded weights; see there).
Wall time per phase, completions/s and tokens/s are logged every step as perf/* (vlmrl/infra/perf.py).
Every val pass (eval_every steps) also logs visual reliance on the first `reliance.items` val items:
their accuracy with a blank and with a shuffled image, and the difference (lit/greedy.py, val/reliance/*).

An update whose loss or gradient norm is not finite is skipped (the LR schedule still advances, so
it stays a function of the step), counted in `train/skipped_updates`, and after `max_nonfinite`
such updates in a row the run stops with `NonFiniteError`; a checkpoint is never written with
non-finite weights.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import lightning as L
import torch

from ..algo.dynamic_sampling import informative, pick_groups
from ..algo.loss import micro_batch_weight, rollout_correction
from ..algo.overlong import truncated_rows
from ..infra.perf import PhaseTimer, step_metrics
from ..infra.runlog import log_samples, log_step_metrics
from ..optim import make_optimizer
from ..rollout.base import RolloutBatch, completion_logprobs, concat
from ..rollout.seeded import derive_seed
from ..strategies import full_params_for_generate, prepare_reference, rank_slice, reduce_mean
from .greedy import GreedyEvaluation


class Sampled(NamedTuple):
    """One round of a step's sampling: the completions of N = rows x G, their scores {name: [N]}, which were
    cut at the length cap [N] (bool), and the prompt records they answer (rows of them)."""
    batch: RolloutBatch
    scores: dict
    truncated: torch.Tensor
    records: list[dict]


class NonFiniteError(RuntimeError):
    """Too many updates in a row had a non-finite loss or gradient norm."""


def all_finite(parameters) -> bool:
    return bool(torch.stack([torch.isfinite(p).all() for p in parameters]).all())


class GRPOModule(GreedyEvaluation, L.LightningModule):
    def __init__(self, policy, processor, rollout, reward, kl, curriculum, optim: dict, steps: int, *,
                 mu: int, micro_batch_size: int, max_grad_norm: float, eval_max_new_tokens: int,
                 samples_every: int, seed: int, max_nonfinite: int, reference: dict | None, overlong,
                 dynamic_sampling, loss, advantage, reliance, ref_policy=None):
        super().__init__()
        self.automatic_optimization = False
        self.policy, self.processor = policy, processor
        self._ref = [ref_policy]  # a list keeps it out of state_dict / checkpoints; moved in on_fit_start
        self.rollout, self.reward, self.kl, self.curriculum = rollout, reward, kl, curriculum
        self.optim, self.steps, self.mu = dict(optim), steps, mu
        self.loss, self.advantage, self.overlong = loss, advantage, overlong  # the `loss` / `advantage` groups
        self.dynamic_sampling = dynamic_sampling
        self.reliance = reliance  # lit.greedy.Reliance: visual reliance logged at every val pass (val/reliance/*)
        self.micro_batch_size, self.max_grad_norm = micro_batch_size, max_grad_norm
        self.eval_max_new_tokens, self.samples_every, self.seed = eval_max_new_tokens, samples_every, seed
        self.rollout_step = 0  # completed rollout steps; the s of beta(s) and stage(s)
        self.max_nonfinite, self.skipped_updates, self.nonfinite_in_a_row = max_nonfinite, 0, 0
        self.reference = reference  # strategy.reference: shard / offload the reference (strategies.prepare_reference)
        if ref_policy is None and not kl.always_zero:
            raise ValueError("the KL schedule is non-zero somewhere, so a reference model is needed")

    @property
    def ref_policy(self):
        return self._ref[0]

    def on_fit_start(self) -> None:
        if self.ref_policy is not None:
            self._ref[0] = prepare_reference(self.ref_policy, self.trainer.strategy, self.reference)

    def configure_optimizers(self):
        return make_optimizer(self.policy, self.optim, self.steps * self.mu)

    # ------------------------------------------------------------------ one rollout step
    def training_step(self, _step_index, batch_idx):
        s = self.rollout_step
        timer = PhaseTimer()
        stage_index, stage = self.curriculum.stage_at(s)
        beta = self.kl(s)
        rank, world = self.global_rank, self.trainer.world_size
        records = rank_slice(self.trainer.datamodule.train_batch(s), rank, world)  # whole groups per rank
        sampled = self._sample(records, stage, self._rollout_seed(s), timer)
        dynamic = {}
        if self.dynamic_sampling.enabled:
            sampled, dynamic = self._fill(sampled, stage, s, timer)
        batch, scores, truncated, records = sampled.batch, sampled.scores, sampled.truncated, sampled.records
        rewards, loss_mask, overlong = self.overlong.apply(scores["total"], batch.completion_mask, truncated,
                                                           stage.max_new_tokens)
        advantages = self._advantages(rewards, stage.group_size)                            # [N]
        temperature = self.rollout.temperature
        n = len(batch.completions)
        slices = [slice(i, min(i + self.micro_batch_size, n)) for i in range(0, n, self.micro_batch_size)]

        micro_batches = [batch.rows(sl) for sl in slices]
        masks = [loss_mask[sl] for sl in slices]
        with timer("logprobs"), torch.no_grad():
            ref_logp = ([completion_logprobs(self.ref_policy, micro, temperature) for micro in micro_batches]
                        if beta != 0 else [None] * len(slices))
        with timer("update"):
            loss_metrics, grad_norm = self._policy_updates(slices, micro_batches, masks, ref_logp, advantages, beta,
                                                           step=s, max_tokens=stage.max_new_tokens)

        log = {
            "train/reward": scores["total"].mean(), "train/acc": scores["accuracy"].mean(),
            "train/format": scores["format"].mean(),
            "train/completion_len": batch.completion_mask.sum(1).float().mean(),
            "train/frac_groups_equal_reward": 1 - sum(informative(rewards, stage.group_size)) / (n // stage.group_size),
            "train/grad_norm": grad_norm, "train/lr": self.lr_schedulers().get_last_lr()[0],
            "train/skipped_updates": float(self.skipped_updates), **{f"train/{k}": v for k, v in overlong.items()},
            **dynamic,
            "kl/beta": beta, "curriculum/stage": float(stage_index), "curriculum/group_size": float(stage.group_size),
            "curriculum/max_new_tokens": float(stage.max_new_tokens),
        }
        for key in loss_metrics[0]:
            log[f"train/{key}"] = sum(m[key] for m in loss_metrics) / len(loss_metrics)
        log = reduce_mean(self.trainer.strategy, log)  # means over ranks (equal shares: the global means)
        if "train/kl" in log:
            self.kl.update(log["train/kl"], n * world)  # the adaptive controller moves beta; step schedules ignore it
        log_step_metrics(self, log, step=s)
        # timings in a row of their own: the train rows stay a pure function of (seed, step), as resume tests demand.
        # Under DDP: seconds are means over ranks; counts x world averaged over ranks give the sum of the ranks' rates.
        perf = reduce_mean(self.trainer.strategy, step_metrics(timer, completions=n * world,
                                                               tokens=int(batch.completion_mask.sum()) * world))
        log_step_metrics(self, perf, step=s)
        self.log("reward", log["train/reward"], prog_bar=True, on_step=True, logger=False)
        self.log("s/step", perf["perf/step_s"], prog_bar=True, on_step=True, logger=False)
        self.log("compl/s", perf["perf/completions_per_s"], prog_bar=True, on_step=True, logger=False)
        if self.samples_every and s % self.samples_every == 0 and rank == 0:  # rank 0 holds the step's first prompt
            G = stage.group_size
            log_samples(self.trainer, s, records[0], batch.completions[:G],
                        scores["accuracy"][:G].tolist(), scores["format"][:G].tolist(), advantages[:G].tolist())
        self.rollout_step += 1

    def _rollout_seed(self, s: int, *extra) -> int:
        if self.trainer.world_size > 1 and getattr(self.rollout, "seeding", "row") == "step":  # ranks must not share one stream
            return derive_seed(self.seed, "rollout", s, *extra, "rank", self.global_rank)
        return derive_seed(self.seed, "rollout", s, *extra)

    def _sample(self, records: list[dict], stage, seed: int, timer) -> Sampled:
        """records -> their G completions each, scored."""
        with timer("rollout"), full_params_for_generate(self.trainer.strategy, self.policy):
            batch = self.rollout.generate(self.policy, self.processor, records, stage.group_size,
                                          stage.max_new_tokens, seed=seed)
        with timer("reward"):
            scores = self.reward.score_records(batch.completions, records, repeat=stage.group_size)
        truncated = truncated_rows(batch.completion_ids, batch.completion_mask, self.processor.tokenizer.eos_token_id)
        return Sampled(batch, scores, truncated, records)

    def _fill(self, first: Sampled, stage, s: int, timer) -> tuple[Sampled, dict]:
        """Dynamic sampling (algo/dynamic_sampling.py): more rounds of prompts until the step's B groups are
        informative or the rounds run out -> (the B picked groups, metrics)."""
        G, B = stage.group_size, len(first.records)
        rounds = [first]

        def flags(sampled: Sampled):  # informative groups of a round, judged on the rewards the advantages will see
            return informative(self.overlong.apply(sampled.scores["total"], sampled.batch.completion_mask,
                                                   sampled.truncated, stage.max_new_tokens)[0], G)

        found = [flags(first)]
        while True:
            short = sum(map(sum, found)) < B and len(rounds) <= self.dynamic_sampling.max_rounds
            if reduce_mean(self.trainer.strategy, {"short": float(short)})["short"] == 0:  # no rank is short
                break
            k = len(rounds)
            records = rank_slice(self.trainer.datamodule.refill_batch(s, k), self.global_rank, self.trainer.world_size)
            rounds.append(self._sample(records, stage, self._rollout_seed(s, "refill", k), timer))
            found.append(flags(rounds[-1]))
        picks, fillers = pick_groups(found, B)
        segments = []                                                    # consecutive picks of one round
        for r, g in picks:
            if segments and segments[-1][0] == r:
                segments[-1][1].append(g)
            else:
                segments.append((r, [g]))

        def rows(values, groups):  # [B_r * G] -> the rows of `groups`, in order
            return values.view(-1, G)[groups].reshape(-1)

        batch = concat([rounds[r].batch.groups(gs) for r, gs in segments], pad_id=self.processor.tokenizer.pad_token_id)
        scores = {key: torch.cat([rows(rounds[r].scores[key], gs) for r, gs in segments]) for key in first.scores}
        truncated = torch.cat([rows(rounds[r].truncated, gs) for r, gs in segments])
        records = [rounds[r].records[g] for r, g in picks]
        metrics = {"dynamic/rounds": float(len(rounds) - 1), "dynamic/informative": sum(found[0]) / B,
                   "dynamic/short": float(fillers)}
        return Sampled(batch, scores, truncated, records), metrics

    def _advantages(self, rewards: torch.Tensor, group_size: int) -> torch.Tensor:
        """rewards [n] of this rank -> advantages [n], computed over every rank's rewards (whole groups per
        rank, ranks in order), so estimators with batch statistics (reinforce_pp) see the global batch."""
        rewards = rewards.to(self.device)
        world = self.trainer.world_size
        if world == 1:
            return self.advantage(rewards, group_size)
        everyone = self.all_gather(rewards).reshape(-1)                                      # [world * n]
        n = rewards.numel()
        return self.advantage(everyone, group_size)[self.global_rank * n:(self.global_rank + 1) * n]

    def _policy_updates(self, slices, micro_batches, masks, ref_logp, advantages, beta: float, step: int,
                        max_tokens: int):
        """mu updates of the policy on one rollout batch -> (loss metrics of every micro-batch, last grad norm).

        masks: each micro-batch's loss mask [n, L] (the completion mask, less overlong rows when masked).
        Old log-probs: the first update's own forward, detached (no separate pass). The parameters change
        only after every micro-batch of an update has run, so that forward is the policy that sampled.
        Each micro-batch's loss is weighted so their sum is the loss's aggregation over the whole batch
        (algo.loss.micro_batch_weight; token_mean: over every rank's tokens)."""
        opt, sched = self.optimizers(), self.lr_schedulers()
        n, temperature = slices[-1].stop, self.rollout.temperature
        entropy = "grad" if self.loss.entropy_coef else "detached"
        tokens = sum(float(m.sum()) for m in masks)
        if self.loss.aggregation == "token_mean":  # DDP averages the ranks' gradients: weigh by the mean token count
            tokens = reduce_mean(self.trainer.strategy, {"tokens": tokens})["tokens"]
        loss_metrics, old_logp = [], [None] * len(slices)
        for _ in range(self.mu):
            for i, (sl, micro, mask, ref) in enumerate(zip(slices, micro_batches, masks, ref_logp)):
                logp, ent = completion_logprobs(self.policy, micro, temperature, entropy=entropy)   # [n, L] each
                if old_logp[i] is None:
                    old_logp[i] = logp.detach()
                weights, correction = (None, {}) if micro.rollout_logprobs is None else rollout_correction(
                    old_logp[i], micro.rollout_logprobs, micro.completion_mask,
                    getattr(self.rollout, "is_correction", None), getattr(self.rollout, "is_level", "token"),
                    getattr(self.rollout, "is_mode", "truncate"))
                loss, metrics = self.loss(logp, old_logp[i], ref, advantages[sl], mask, beta, token_weights=weights,
                                          max_tokens=max_tokens, entropy=ent)
                weight = micro_batch_weight(self.loss.aggregation, mask, n, tokens)
                self.manual_backward(loss * weight)
                # logged: the micro-batches' mean of this is the step's loss over the whole batch (and, averaged
                # over ranks, over every rank's batch), whatever the aggregation
                loss_metrics.append({"loss": loss.item() * weight * len(slices), **metrics, **correction})
            grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            finite = bool(torch.isfinite(grad_norm)) and all(math.isfinite(m["loss"]) for m in loss_metrics[-len(slices):])
            finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)  # every rank steps, or none
            self._update(opt, sched, finite, step=step)
        return loss_metrics, grad_norm

    def _update(self, opt, sched, finite: bool, step: int) -> None:
        """One optimizer step, or none when the loss or gradient norm is not finite."""
        if finite:
            opt.step()
            self.nonfinite_in_a_row = 0
        else:
            self.skipped_updates += 1
            self.nonfinite_in_a_row += 1
            print(f"[vlmrl] step {step}: non-finite loss or gradient norm, update skipped "
                  f"({self.nonfinite_in_a_row} in a row, {self.skipped_updates} in all)")
            if self.nonfinite_in_a_row >= self.max_nonfinite:
                raise NonFiniteError(f"{self.nonfinite_in_a_row} updates in a row had a non-finite loss or gradient "
                                     f"norm (step {step}); stopping (algo.module.max_nonfinite={self.max_nonfinite}). "
                                     f"Lower the learning rate or check the data; the last checkpoint is finite.")
        opt.zero_grad(set_to_none=True)
        sched.step()

    # ------------------------------------------------------------------ checkpoint state
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if not all_finite(self.policy.parameters()):
            raise NonFiniteError("refusing to write a checkpoint with non-finite weights")
        checkpoint["grpo"] = {"rollout_step": self.rollout_step, "kl": self.kl.state_dict(),
                              "curriculum": self.curriculum.state_dict(), "skipped_updates": self.skipped_updates,
                              "nonfinite_in_a_row": self.nonfinite_in_a_row}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["grpo"]
        self.kl.load_state_dict(state["kl"])
        self.curriculum.load_state_dict(state["curriculum"])
        self.rollout_step = state["rollout_step"]
        self.skipped_updates = state.get("skipped_updates", 0)
        self.nonfinite_in_a_row = state.get("nonfinite_in_a_row", 0)
