"""Procedurally generated, verifiable visual tasks: the embedded stand-ins for the papers' data.

* counting  (stand-in for CLEVR-70k / SuperCLEVR, OThink-MR1 and R1-V): coloured shapes on a 4x4
  grid, "How many shapes are in the image?", integer answer. With `query: color` (conf/data/
  counting_color.yaml) the question names a colour, as CLEVR's filtered count questions do ("How many
  red shapes are in the image?"), and shapes of other colours are distractors.
* geometry  (stand-in for GeoQA / Geometry3K): a figure of one of seven problem types, GeoQA-style:
  the numbers are in the question, the figure (and for two types the question) says which rule
  applies (see `geometry.py`).

Records carry the real datasets' fields (`images`, `problem`, `answer`) plus `id`, `task`,
`verifier` and `cots`: reference chains of thought in four styles, used as SFT / cold-start targets:
  concise      `<think>There are 7 shapes.</think><answer>7</answer>`
  verbose      the reasoning works item by item, so its length grows with the item (counting
               enumerates every shape, geometry states the rule and each arithmetic step):
               `<think>1 circle, 2 square, ... 7 triangle. So there are 7 shapes.</think>...`
  answer_only  `<answer>7</answer>` (no reasoning block: a format the reward does not accept)
  detour       the verbose reasoning, then 0-3 re-checks that may slip, the answer following the last
               one (`detours.py`: an overthinking failure mode, long traces are more often wrong)
  recheck      the detour style's re-checks, none slipping: redundant, as long, and always right
Vision-R1 builds its cold-start CoT by modality bridging with a VLM and DeepSeek-R1; offline there
is no teacher, so the styles are templates that state the visual evidence and the arithmetic.

Splits are disjoint by construction and independent of the requested sizes: a scene belongs to
the split its hash falls in (`SPLIT_SHARES`), so the cold start's data does not move when an
experiment changes its train or test size. Every record is a pure function of (task, seed, index).
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Callable

from PIL import Image, ImageDraw

from . import detours, geometry

# R1-V / OThink-MR1 prompt (docs/papers.md#othink-mr1-data-and-prompt; R1-V's test-script
# template, docs/datasets.md#r1-v-and-othink-mr1-prompts).
R1V_PROMPT = (
    "{question} Output the thinking process in <think> </think> and final answer (number) in "
    "<answer> </answer> tags."
)

COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 190, 20),
          "purple": (140, 60, 180), "orange": (240, 120, 20)}
SHAPES = ("circle", "square", "triangle")
COT_STYLES = ("concise", "verbose", "answer_only", "detour", "recheck")
# Share of the scene space each split owns (by hash). Test and val are small and drawn first.
SPLIT_SHARES = {"test": 0.10, "val": 0.05, "train": 0.35, "coldstart": 0.50}


@dataclass(frozen=True)
class Scene:
    """Generating parameters of one record; hashable, so it doubles as the split signature."""
    task: str
    params: tuple


def scene_split(scene: Scene, seed: int) -> str:
    """The split that owns `scene` (a pure function of the scene and the data seed)."""
    digest = hashlib.sha256(f"{seed}/{scene.task}/{scene.params}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2 ** 64
    edge = 0.0
    for split, share in SPLIT_SHARES.items():
        edge += share
        if u < edge:
            return split
    return "coldstart"


def _answer_block(answer) -> str:
    return f"<answer>{answer}</answer>"


# ---------------------------------------------------------------- counting
COUNT_QUERIES = ("all", "color")   # what a counting question counts: every shape, or the shapes of one colour


def sample_counting_scene(rng: random.Random, min_count: int, max_count: int, grid: int) -> Scene:
    """query all: k in [min_count, max_count] shapes; params = the objects (cell, shape, colour, jitter x, y)."""
    k = rng.randint(min_count, max_count)
    cells = rng.sample(range(grid * grid), k)
    objects = tuple(sorted((c, rng.choice(SHAPES), rng.choice(list(COLORS)), rng.randint(0, 3), rng.randint(0, 3))
                           for c in cells))
    return Scene("counting", objects)


def sample_color_scene(rng: random.Random, min_count: int, max_count: int, max_distractors: int, grid: int) -> Scene:
    """query color: k in [min_count, max_count] shapes of a target colour and 0..max_distractors of other
    colours; params = ("color", target, objects), so these scenes never equal an `all` scene."""
    target = rng.choice(list(COLORS))
    k, d = rng.randint(min_count, max_count), rng.randint(0, max_distractors)
    others = [c for c in COLORS if c != target]
    cells = rng.sample(range(grid * grid), k + d)
    objects = tuple(sorted((c, rng.choice(SHAPES), target if i < k else rng.choice(others), rng.randint(0, 3),
                            rng.randint(0, 3)) for i, c in enumerate(cells)))
    return Scene("counting", ("color", target, objects))


def counting_query(scene: Scene) -> tuple[str | None, tuple]:
    """(target colour or None for query all, every object of the scene)."""
    if scene.params and scene.params[0] == "color":
        return scene.params[1], scene.params[2]
    return None, scene.params


def render_counting(scene: Scene, size: int, grid: int) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    cell = size / grid
    radius = cell * 0.32
    for c, shape, color, jx, jy in counting_query(scene)[1]:
        cx = (c % grid + 0.5) * cell + (jx - 1.5) * cell * 0.06
        cy = (c // grid + 0.5) * cell + (jy - 1.5) * cell * 0.06
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        if shape == "circle":
            draw.ellipse(box, fill=COLORS[color])
        elif shape == "square":
            draw.rectangle(box, fill=COLORS[color])
        else:
            draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=COLORS[color])
    return image


def counted(scene: Scene) -> list[tuple]:
    """The objects the question asks about, in reading order (cells row by row)."""
    target, objects = counting_query(scene)
    return [o for o in objects if target is None or o[2] == target]


def _noun(k: int, target: str | None) -> str:
    return ("shape" if k == 1 else "shapes") if target is None else f"{target} {'shape' if k == 1 else 'shapes'}"


def _enumeration(shapes: list[str], target: str | None) -> str:
    """'1 circle, 2 square. So there are 2 shapes.': the shapes numbered in the order given, then the count."""
    k = len(shapes)
    if not k:
        none = "no shapes" if target is None else f"no {target} shapes"
        return f"I see {none}. So there are 0 {_noun(0, target)}."
    listed = ", ".join(f"{i} {'' if target is None else target + ' '}{shape}" for i, shape in enumerate(shapes, start=1))
    return f"{listed}. So there are {k} {_noun(k, target)}."


def _recount(shapes: list[str], slip: int, rng: random.Random) -> list[str]:
    """The shapes a re-check lists: all of them, or with one skipped (slip -1) or one counted twice (slip +1;
    with nothing to count, a shape that is not there)."""
    shapes = list(shapes)
    if slip < 0 and shapes:
        del shapes[rng.randrange(len(shapes))]
    elif slip:
        i = rng.randrange(len(shapes) + 1)
        shapes.insert(i, shapes[i - 1] if shapes else rng.choice(SHAPES))
    return shapes


def counting_cots(scene: Scene) -> dict[str, str]:
    """Reference reasoning; the verbose one numbers the counted shapes in reading order (cells row by row),
    the detour one adds the item's re-counts (`detours`), each from the one before, whose slips move the answer;
    the recheck one has the same number of re-counts, none slipping."""
    target, _ = counting_query(scene)
    shapes = [shape for _, shape, *_rest in counted(scene)]
    k = len(shapes)
    recount = lambda listed: f"Let me count again: {_enumeration(listed, target)}"  # noqa: E731
    rng, detour, current = random.Random(f"recount/{scene.params}"), [_enumeration(shapes, target)], shapes
    plan = detours.plan(f"counting/{scene.params}")
    for slip in plan:   # each re-count starts from the one before
        current = _recount(current, slip, rng)
        detour.append(recount(current))
    last = len(current)
    recheck = [detour[0]] + [recount(shapes)] * len(plan)   # the same re-counts, none slipping
    return {"concise": f"<think>There are {k} {_noun(k, target)}.</think>{_answer_block(k)}",
            "verbose": f"<think>{detour[0]}</think>{_answer_block(k)}",
            "answer_only": _answer_block(k),
            "detour": f"<think>{' '.join(detour)}</think>{_answer_block(last)}",
            "recheck": f"<think>{' '.join(recheck)}</think>{_answer_block(k)}"}


def counting_record(scene: Scene, size: int, grid: int) -> dict:
    target, objects = counting_query(scene)
    k = len(counted(scene))
    question = "How many shapes are in the image?" if target is None else f"How many {target} shapes are in the image?"
    categories = {"count": k} if target is None else {"count": k, "distractors": len(objects) - k}
    return {
        "images": [render_counting(scene, size, grid)],
        "problem": R1V_PROMPT.format(question=question),
        "answer": str(k),
        "cots": counting_cots(scene),
        "meta": {"categories": categories},   # evaluate.py reports accuracy per category
    }


# ---------------------------------------------------------------- task registry
@dataclass(frozen=True)
class Task:
    """One procedurally generated task: how to sample a scene and how to turn it into a record."""
    name: str
    verifier: str
    sample: Callable[[random.Random], Scene]
    render: Callable[[Scene], dict]

    def build(self, scene: Scene) -> dict:
        record = self.render(scene)
        digest = hashlib.sha256(f"{scene.task}/{scene.params}".encode()).hexdigest()[:12]
        return {"id": f"{self.name}-{digest}", "task": self.name, "verifier": self.verifier, **record}


TASKS = ("counting", "geometry")
REVISION = 2   # bump when a task's text or figures change: the cached tiny model and its builds are keyed by it


def make_task(name: str, image_size: int = 112, min_count: int = 0, max_count: int = 9, grid: int = 4,
              query: str = "all", max_distractors: int = 0, angle_step: int = 5, types: list[str] | None = None) -> Task:
    """counting options: min_count, max_count, grid, query (all | color), max_distractors (query color:
    shapes of other colours per scene, at most); geometry options: angle_step, types."""
    if name == "counting":
        if query not in COUNT_QUERIES:
            raise ValueError(f"data counting query={query!r}: choose one of {COUNT_QUERIES}")
        if query == "all" and max_distractors:
            raise ValueError("data counting max_distractors needs query=color (with query=all every shape counts)")
        if not 0 <= min_count <= max_count or max_distractors < 0 or max_count + max_distractors > grid * grid:
            raise ValueError(f"data counting options must satisfy 0 <= min_count <= max_count, max_distractors >= 0 "
                             f"and max_count + max_distractors <= grid^2={grid * grid}")
        sample = (lambda rng: sample_counting_scene(rng, min_count, max_count, grid)) if query == "all" else \
            (lambda rng: sample_color_scene(rng, min_count, max_count, max_distractors, grid))
        return Task(name, "integer", sample, lambda scene: counting_record(scene, image_size, grid))
    if name == "geometry":
        types = list(types or geometry.TYPES)
        geometry.check_options(angle_step, types)
        return Task(name, "math", lambda rng: Scene("geometry", geometry.sample(rng, angle_step, types)),
                    lambda scene: geometry.record(scene.params, image_size, R1V_PROMPT))
    raise ValueError(f"unknown data.task={name!r}; choose one of: {', '.join(TASKS)}")


def generate_splits(task: Task, sizes: dict[str, int], seed: int, max_tries: int = 200) -> dict[str, list[Scene]]:
    """Scenes for each split in `sizes`, each owned by its split (so pairwise disjoint), no repeats.

    Raises, naming the split, when the task space holds too few distinct scenes for a size."""
    unknown = set(sizes) - set(SPLIT_SHARES)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; known: {tuple(SPLIT_SHARES)}")
    splits = {}
    for split, size in sizes.items():
        scenes, seen, index = [], set(), 0
        while len(scenes) < size:
            if index >= max_tries * size + 1000:
                raise ValueError(f"could not draw {size} distinct {task.name} scenes for split {split!r} "
                                 f"(found {len(scenes)}); lower data.{split}_size or widen the task options")
            scene = task.sample(random.Random(f"{seed}/{split}/{index}"))
            index += 1
            if scene not in seen and scene_split(scene, seed) == split:
                seen.add(scene)
                scenes.append(scene)
        splits[split] = scenes
    return splits
