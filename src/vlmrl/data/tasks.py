"""Procedurally generated, verifiable visual tasks: the embedded stand-ins for the papers' data.

* counting  (stand-in for CLEVR-70k / SuperCLEVR, OThink-MR1 and R1-V): a scene of coloured shapes
  on white, "How many shapes are in the image?", integer answer.
* geometry  (stand-in for GeoQA / Geometry3K): a rendered triangle with two labelled angles and a
  third marked x, "find x", answer in degrees.

Records carry the real datasets' fields (`images`, `problem`, `answer`), plus `reference_cot`, a
templated chain of thought used by the SFT / cold-start data. Vision-R1 builds its cold-start CoT
by modality bridging with a VLM and DeepSeek-R1; no such teacher exists offline, so the embedded
default uses a template that states the visual evidence and the arithmetic.

Every record is a pure function of (task, seed, index). Splits are disjoint by construction:
each split draws from its own seed stream and drops any scene whose signature (the generating
parameters) another split already holds.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable

from PIL import Image, ImageDraw, ImageFont

# R1-V / OThink-MR1 prompt (../shared/papers.md).
R1V_PROMPT = (
    "{question} Output the thinking process in <think> </think> and final answer (number) in "
    "<answer> </answer> tags."
)

COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 190, 20),
          "purple": (140, 60, 180), "orange": (240, 120, 20)}
SHAPES = ("circle", "square", "triangle")
SPLIT_ORDER = ("test", "val", "train", "coldstart")  # earlier splits win signature collisions


@dataclass(frozen=True)
class Scene:
    """Generating parameters of one record; hashable, so it doubles as the split signature."""
    task: str
    params: tuple


def _split_rng(seed: int, split: str, index: int) -> random.Random:
    return random.Random(f"{seed}/{split}/{index}")


# ---------------------------------------------------------------- counting
def sample_counting_scene(rng: random.Random, min_count: int, max_count: int, grid: int) -> Scene:
    k = rng.randint(min_count, max_count)
    cells = rng.sample(range(grid * grid), k)
    objects = tuple(sorted((c, rng.choice(SHAPES), rng.choice(list(COLORS)), rng.randint(0, 3), rng.randint(0, 3))
                           for c in cells))
    return Scene("counting", objects)


def render_counting(scene: Scene, size: int, grid: int) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    cell = size / grid
    radius = cell * 0.32
    for c, shape, color, jx, jy in scene.params:
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


def counting_record(scene: Scene, size: int, grid: int) -> dict:
    k = len(scene.params)
    return {
        "images": [render_counting(scene, size, grid)],
        "problem": R1V_PROMPT.format(question="How many shapes are in the image?"),
        "answer": str(k),
        "reference_cot": f"<think>I count {k} shapes.</think><answer>{k}</answer>",
    }


# ---------------------------------------------------------------- geometry
def sample_geometry_scene(rng: random.Random, min_angle: int, max_angle: int) -> Scene:
    while True:
        a, b = rng.randrange(min_angle, max_angle + 1, 5), rng.randrange(min_angle, max_angle + 1, 5)
        if 180 - a - b >= min_angle:
            return Scene("geometry", (a, b, rng.randint(0, 2)))  # last: which corner is x


def _triangle_vertices(angles: tuple[int, int, int], size: int) -> list[tuple[float, float]]:
    """Vertices with the given interior angles (deg) at A, B, C, scaled into the image."""
    a, b, _ = (math.radians(t) for t in angles)
    # A at origin, B at (1, 0); C from the law of sines.
    ac = math.sin(b) / math.sin(math.pi - a - b)
    pts = [(0.0, 0.0), (1.0, 0.0), (ac * math.cos(a), ac * math.sin(a))]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    scale = 0.7 * size / max(max(xs) - min(xs), max(ys) - min(ys))
    ox = (size - scale * (max(xs) - min(xs))) / 2 - scale * min(xs)
    oy = (size - scale * (max(ys) - min(ys))) / 2 - scale * min(ys)
    return [(ox + scale * x, size - (oy + scale * y)) for x, y in pts]


def corner_angles(scene: Scene) -> list[int]:
    """Interior angle at each of the three corners: x = 180 - a - b sits at corner `x_corner`."""
    a, b, x_corner = scene.params
    known = [a, b]
    return [180 - a - b if corner == x_corner else known.pop(0) for corner in range(3)]


def render_geometry(scene: Scene, size: int) -> Image.Image:
    x_corner = scene.params[2]
    angles = corner_angles(scene)
    labels = [f"{t}°" for t in angles]
    labels[x_corner] = "x"
    verts = _triangle_vertices(tuple(angles), size)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    draw.polygon(verts, outline=(0, 0, 0), width=2)
    font = ImageFont.load_default(size=max(10, size // 14))
    cx, cy = sum(v[0] for v in verts) / 3, sum(v[1] for v in verts) / 3
    for (vx, vy), text in zip(verts, labels):
        tx, ty = vx + 0.28 * (cx - vx), vy + 0.28 * (cy - vy)  # inside the corner
        draw.text((tx, ty), text, fill=(200, 0, 0), font=font, anchor="mm")
    return image


def geometry_record(scene: Scene, size: int) -> dict:
    a, b, _ = scene.params
    x = 180 - a - b
    known = [a, b]
    question = "In the triangle, two angles are given. Find the angle x in degrees."
    return {
        "images": [render_geometry(scene, size)],
        "problem": R1V_PROMPT.format(question=question),
        "answer": f"{x}°",
        "reference_cot": (f"<think>The angles of a triangle sum to 180. x = 180 - {known[0]} - {known[1]} = {x}."
                          f"</think><answer>{x}</answer>"),
    }


# ---------------------------------------------------------------- task registry
@dataclass(frozen=True)
class Task:
    """One procedurally generated task: how to sample a scene and how to turn it into a record."""
    name: str
    sample: Callable[[random.Random], Scene]
    build: Callable[[Scene], dict]


def make_task(name: str, image_size: int = 112, min_count: int = 0, max_count: int = 9, grid: int = 4,
              min_angle: int = 20, max_angle: int = 100) -> Task:
    if name == "counting":
        if not 0 <= min_count <= max_count <= grid * grid:
            raise ValueError(f"data.min_count/max_count must satisfy 0 <= min <= max <= grid^2={grid * grid}")
        return Task(name, lambda rng: sample_counting_scene(rng, min_count, max_count, grid),
                    lambda scene: counting_record(scene, image_size, grid))
    if name == "geometry":
        if not 0 < min_angle <= max_angle or 3 * min_angle > 180:
            raise ValueError("data.min_angle/max_angle must allow three angles >= min_angle summing to 180")
        return Task(name, lambda rng: sample_geometry_scene(rng, min_angle, max_angle),
                    lambda scene: geometry_record(scene, image_size))
    raise ValueError(f"unknown data.task={name!r}; choose one of: counting, geometry")


def generate_splits(task: Task, sizes: dict[str, int], seed: int, max_tries: int = 50) -> dict[str, list[Scene]]:
    """Scenes for each split in `sizes`, pairwise disjoint. Raises if the task space is too small."""
    unknown = set(sizes) - set(SPLIT_ORDER)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; known: {SPLIT_ORDER}")
    taken: set[Scene] = set()
    splits = {}
    for split in (s for s in SPLIT_ORDER if s in sizes):
        scenes, index = [], 0
        while len(scenes) < sizes[split]:
            if index >= max_tries * sizes[split] + 1000:
                raise ValueError(f"could not draw {sizes[split]} distinct {task.name} scenes for split {split!r}")
            scene = task.sample(_split_rng(seed, split, index))
            index += 1
            if scene not in taken:
                taken.add(scene)
                scenes.append(scene)
        splits[split] = scenes
    return splits
