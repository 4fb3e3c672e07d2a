"""Rollout-length curricula: Vision-R1's PTST (Progressive Thinking Suppression Training).

A curriculum is a list of stages (max_new_tokens, group_size, steps); `stage_at(step)` is a pure
function of the rollout step, so a resumed run lands in the right stage by construction. PTST keeps
completions short and groups large first (suppressing long, wrong reasoning), then relaxes the
length and shrinks the group: Vision-R1's final schedule is 4K x 16 for 100 steps, then 8K x 8 for
100 steps. `none` is one stage spanning the whole run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Stage:
    max_new_tokens: int
    group_size: int
    steps: int


class Curriculum:
    """`name`: the config option (`none`: one stage from algo.group_size and algo.max_new_tokens; any other:
    stages of their own, and those two keys stay null)."""

    def __init__(self, stages: list, total_steps: int, name: str):
        self.name = name
        if not stages:
            raise ValueError("curriculum.stages is empty")
        self.stages = [s if isinstance(s, Stage) else Stage(**s) for s in stages]
        for i, stage in enumerate(self.stages):
            if stage.group_size < 2:
                raise ValueError(f"curriculum.stages[{i}].group_size={stage.group_size}: GRPO needs >= 2 samples per group")
            if stage.max_new_tokens < 1 or stage.steps < 1:
                raise ValueError(f"curriculum.stages[{i}]: max_new_tokens and steps must be >= 1, got {stage}")
        covered = sum(s.steps for s in self.stages)
        if covered < total_steps:
            raise ValueError(f"curriculum.stages cover {covered} steps but the run has algo.steps={total_steps}")
        self.total_steps = int(total_steps)

    def stage_at(self, step: int) -> tuple[int, Stage]:
        """Index and stage in force at rollout step `step` (0-based)."""
        end = 0
        for index, stage in enumerate(self.stages):
            end += stage.steps
            if step < end:
                return index, stage
        return len(self.stages) - 1, self.stages[-1]

    @property
    def max_group_size(self) -> int:
        return max(s.group_size for s in self.stages)

    def state_dict(self) -> dict:
        return {"stages": [asdict(s) for s in self.stages], "total_steps": self.total_steps}

    def load_state_dict(self, state: dict) -> None:
        if state != self.state_dict():
            raise ValueError(f"checkpoint curriculum {state} differs from the configured {self.state_dict()}")
