"""The embedded geometry task: seven problem types, GeoQA-style (numbers in the question, the figure
says which rule applies), drawn to scale, rotated and mirrored.

    type            given (question)         figure                               x
    triangle        angle 1, angle 2         a triangle, x at the third corner    180 - a - b
    exterior        angle 1, angle 2         a triangle with one side extended    a + b
    supplementary   angle 1                  a ray from a point on a line         180 - a
    vertical        angle 1                  two crossing lines                   a
    right           angle 1                  a right triangle (square marker)     90 - a
    isosceles       angle 1 (the apex)       two equal sides (tick marks)         (180 - a) / 2
    pythagoras      the two legs             a right triangle, x the hypotenuse   sqrt(p^2 + q^2)

As in GeoQA, where a question names the relations it gives ("AB = AC", "angle C = 90"), the question
names the right angle and the equal sides (`RELATIONS`). The two pairs it does not name share their
question text, so only the figure tells them apart: triangle vs exterior, supplementary vs vertical.
A scene is (type, numbers, rotation in 15-degree steps, mirror): with angles in steps of 5 degrees
the space holds about 40,000 distinct figures (`space_size`).
"""
from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw, ImageFont

from . import detours

TYPES = ("triangle", "exterior", "supplementary", "vertical", "right", "isosceles", "pythagoras")
ROTATIONS, MIRRORS = 24, 2
PYTHAGOREAN = sorted({(k * a, k * b) for a, b, c, kmax in ((3, 4, 5, 10), (5, 12, 13, 4), (8, 15, 17, 3),
                                                          (7, 24, 25, 2), (20, 21, 29, 1), (9, 40, 41, 1))
                      for k in range(1, kmax + 1)})
ANGLE_QUESTION = "As shown in the figure, {relation}{given}. Find the angle x in degrees."
RELATIONS = {"right": "the triangle has a right angle and ", "isosceles": "the triangle has two equal sides and "}
LENGTH_QUESTION = "As shown in the figure, the two legs of the right triangle are {p} and {q}. Find the length x."


def check_options(angle_step: int, types: list[str]) -> None:
    if angle_step not in (1, 5):
        raise ValueError(f"data.options.angle_step={angle_step}: choose 1 or 5")
    unknown = set(types) - set(TYPES)
    if not types or unknown:
        raise ValueError(f"data.options.types={types}: choose a non-empty subset of {TYPES}")


def _angles(lo: int, hi: int, step: int) -> list[int]:
    return list(range(math.ceil(lo / step) * step, hi + 1, step))


def numbers_space(kind: str, step: int) -> list[tuple]:
    """Every tuple of given numbers a problem of this type can have."""
    if kind in ("triangle", "exterior"):
        return [(a, b) for a in _angles(20, 140, step) for b in _angles(20, 140, step) if 180 - a - b >= 20]
    if kind in ("supplementary", "vertical"):
        return [(a,) for a in _angles(20, 160, step)]
    if kind == "right":
        return [(a,) for a in _angles(10, 80, step)]
    if kind == "isosceles":
        return [(180 - 2 * x,) for x in _angles(15, 85, step)]
    if kind == "pythagoras":
        return [pair for p, q in PYTHAGOREAN for pair in ((p, q), (q, p))]
    raise ValueError(f"unknown geometry type {kind!r}")


def space_size(step: int = 5, types=TYPES) -> int:
    return sum(len(numbers_space(t, step)) for t in types) * ROTATIONS * MIRRORS


def sample(rng: random.Random, step: int, types: list[str]) -> tuple:
    """Scene params: (type, numbers, rotation, mirror). Types are uniform, then numbers uniform."""
    kind = rng.choice(types)
    return kind, rng.choice(numbers_space(kind, step)), rng.randrange(ROTATIONS), rng.randrange(MIRRORS)


# ---------------------------------------------------------------- answers and reasoning
def solve(kind: str, numbers: tuple) -> int:
    if kind == "triangle":
        return 180 - numbers[0] - numbers[1]
    if kind == "exterior":
        return numbers[0] + numbers[1]
    if kind == "supplementary":
        return 180 - numbers[0]
    if kind == "vertical":
        return numbers[0]
    if kind == "right":
        return 90 - numbers[0]
    if kind == "isosceles":
        return (180 - numbers[0]) // 2
    p, q = numbers
    return math.isqrt(p * p + q * q)


def _steps(kind: str, numbers: tuple, x: int) -> tuple[str, list[str], str]:
    """(the rule, the arithmetic one step at a time, the same as one equation)."""
    a, b = numbers[0], numbers[-1]
    if kind == "triangle":
        return ("The angles of a triangle sum to 180.", [f"180 - {a} = {180 - a}.", f"{180 - a} - {b} = {x}."],
                f"x = 180 - {a} - {b} = {x}.")
    if kind == "exterior":
        return ("An exterior angle equals the sum of the two opposite interior angles.", [f"{a} + {b} = {x}."],
                f"x = {a} + {b} = {x}.")
    if kind == "supplementary":
        return "Angles on a straight line sum to 180.", [f"180 - {a} = {x}."], f"x = 180 - {a} = {x}."
    if kind == "vertical":
        return "Vertical angles are equal.", [], f"x = {a}."
    if kind == "right":
        return "The two acute angles of a right triangle sum to 90.", [f"90 - {a} = {x}."], f"x = 90 - {a} = {x}."
    if kind == "isosceles":
        return ("The base angles of an isosceles triangle are equal.", [f"180 - {a} = {180 - a}.", f"{180 - a} / 2 = {x}."],
                f"x = (180 - {a}) / 2 = {x}.")
    return ("By the Pythagorean theorem, x^2 is the sum of the squares of the legs.",
            [f"{a}^2 + {b}^2 = {a * a} + {b * b} = {x * x}."], f"x^2 = {a * a} + {b * b} = {x * x}. So x = {x}.")


def cots(kind: str, numbers: tuple) -> dict[str, str]:
    """Reference reasoning: concise (one equation), verbose (the rule, then each step) and detour (verbose,
    then the item's re-checks of the equation, `detours.py`; a slip moves the result by 10 degrees or 1
    unit of length, a later check keeps it, and the answer follows the last check) and recheck (the same
    checks, none slipping)."""
    x = solve(kind, numbers)
    rule, work, equation = _steps(kind, numbers, x)
    verbose = " ".join([rule, *work, f"So x = {x}."])
    check = lambda value: f"Let me check: {_steps(kind, numbers, value)[2]} So x = {value}."  # noqa: E731
    detour, last = [verbose], x
    unit = 1 if kind == "pythagoras" else 10
    plan = detours.plan(f"geometry/{kind}/{numbers}")
    for slip in plan:   # each check starts from the one before
        last = last + slip * unit if last + slip * unit > 0 else last + unit
        detour.append(check(last))
    recheck = [verbose] + [check(x)] * len(plan)   # the same checks, none slipping
    answer = f"<answer>{x}</answer>"
    return {"concise": f"<think>{equation}</think>{answer}", "verbose": f"<think>{verbose}</think>{answer}",
            "answer_only": answer, "detour": f"<think>{' '.join(detour)}</think><answer>{last}</answer>",
            "recheck": f"<think>{' '.join(recheck)}</think>{answer}"}


def question(kind: str, numbers: tuple) -> str:
    if kind == "pythagoras":
        return LENGTH_QUESTION.format(p=numbers[0], q=numbers[1])
    given = ", ".join(f"angle {i} = {n}°" for i, n in enumerate(numbers, start=1))
    return ANGLE_QUESTION.format(relation=RELATIONS.get(kind, ""), given=given)


def record(params: tuple, size: int, prompt: str) -> dict:
    kind, numbers, rotation, mirror = params
    x = solve(kind, numbers)
    return {
        "images": [render(params, size)],
        "problem": prompt.format(question=question(kind, numbers)),
        "answer": f"{x}" if kind == "pythagoras" else f"{x}°",
        "cots": cots(kind, numbers),
        "meta": {"categories": {"type": kind}},   # evaluate.py reports accuracy per problem type
    }


# ---------------------------------------------------------------- figures
def _unit(dx: float, dy: float) -> tuple[float, float]:
    n = math.hypot(dx, dy) or 1.0
    return dx / n, dy / n


def _corner_label(vertex, p, q, dist=0.22):
    """A point inside angle p-vertex-q, on its bisector."""
    u, v = _unit(p[0] - vertex[0], p[1] - vertex[1]), _unit(q[0] - vertex[0], q[1] - vertex[1])
    b = _unit(u[0] + v[0], u[1] + v[1])
    return vertex[0] + dist * b[0], vertex[1] + dist * b[1]


def _inside(vertex, p, q, frac=0.3):
    """A point inside triangle (vertex, p, q), near `vertex`: a step towards the centroid."""
    cx, cy = (vertex[0] + p[0] + q[0]) / 3, (vertex[1] + p[1] + q[1]) / 3
    return vertex[0] + frac * (cx - vertex[0]), vertex[1] + frac * (cy - vertex[1])


def _triangle(a_deg: float, b_deg: float):
    """Vertices A=(0,0), B=(1,0), C with interior angles a at A and b at B."""
    a, b = math.radians(a_deg), math.radians(b_deg)
    ac = math.sin(b) / math.sin(math.pi - a - b)
    return (0.0, 0.0), (1.0, 0.0), (ac * math.cos(a), ac * math.sin(a))


def _right_mark(c, p, q, s=0.08):
    u, v = _unit(p[0] - c[0], p[1] - c[1]), _unit(q[0] - c[0], q[1] - c[1])
    return [(c[0] + s * u[0], c[1] + s * u[1]), (c[0] + s * (u[0] + v[0]), c[1] + s * (u[1] + v[1])),
            (c[0] + s * v[0], c[1] + s * v[1])]


def _tick(p, q, s=0.05):
    mx, my = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
    u = _unit(q[0] - p[0], q[1] - p[1])
    return [(mx - s * u[1], my + s * u[0]), (mx + s * u[1], my - s * u[0])]


def figure(kind: str, numbers: tuple):
    """(segments, marks (polylines), labels [(point, text)]) in figure coordinates."""
    if kind in ("triangle", "exterior"):
        A, B, C = _triangle(*numbers)
        segments = [(A, B), (B, C), (C, A)]
        labels = [(_inside(A, B, C), "1"), (_inside(B, A, C), "2")]
        if kind == "triangle":
            return segments, [], labels + [(_inside(C, A, B), "x")]
        u = _unit(C[0] - B[0], C[1] - B[1])
        length = math.hypot(C[0] - B[0], C[1] - B[1])
        D = (C[0] + 0.6 * length * u[0], C[1] + 0.6 * length * u[1])
        return segments + [(C, D)], [], labels + [(_corner_label(C, A, D), "x")]
    if kind in ("supplementary", "vertical"):
        a = math.radians(numbers[0])
        O, P, Q, R = (0.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (math.cos(a), math.sin(a))
        if kind == "supplementary":
            return [(P, Q), (O, R)], [], [(_corner_label(O, Q, R, 0.3), "1"), (_corner_label(O, R, P, 0.3), "x")]
        S = (-R[0], -R[1])
        return [(P, Q), (S, R)], [], [(_corner_label(O, Q, R, 0.3), "1"), (_corner_label(O, P, S, 0.3), "x")]
    if kind == "right":
        a = math.radians(numbers[0])
        C, A, B = (0.0, 0.0), (1.0, 0.0), (0.0, math.tan(a))
        return [(C, A), (A, B), (B, C)], [_right_mark(C, A, B)], [(_inside(A, B, C, 0.4), "1"),
                                                                   (_inside(B, A, C, 0.4), "x")]
    if kind == "isosceles":
        apex = math.radians(numbers[0])
        A, B, C = (0.0, 1.0 / math.tan(apex / 2)), (-1.0, 0.0), (1.0, 0.0)
        return [(A, B), (B, C), (C, A)], [_tick(A, B), _tick(A, C)], [(_inside(A, B, C, 0.4), "1"),
                                                                       (_inside(B, A, C, 0.4), "x")]
    p, q = numbers
    C, A, B = (0.0, 0.0), (p / max(p, q), 0.0), (0.0, q / max(p, q))
    out = lambda m, d: (m[0] + d[0], m[1] + d[1])  # noqa: E731
    return ([(C, A), (A, B), (B, C)], [_right_mark(C, A, B)],
            [(out(((A[0]) / 2, 0), (0, -0.12)), str(p)), (out((0, B[1] / 2), (-0.12, 0)), str(q)),
             (out((A[0] / 2, B[1] / 2), (0.1, 0.1)), "x")])


def render(params: tuple, size: int) -> Image.Image:
    kind, numbers, rotation, mirror = params
    segments, marks, labels = figure(kind, numbers)
    theta = math.radians(360 / ROTATIONS * rotation)
    cos, sin = math.cos(theta), math.sin(theta)

    def turn(p):
        x, y = (-p[0], p[1]) if mirror else p
        return x * cos - y * sin, x * sin + y * cos

    segments = [(turn(p), turn(q)) for p, q in segments]
    marks = [[turn(p) for p in m] for m in marks]
    labels = [(turn(p), t) for p, t in labels]
    points = [p for s in segments for p in s] + [p for p, _ in labels]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    scale = 0.8 * size / span
    ox = size / 2 - scale * (max(xs) + min(xs)) / 2
    oy = size / 2 + scale * (max(ys) + min(ys)) / 2

    def px(p):
        return ox + scale * p[0], oy - scale * p[1]  # y up in figure coordinates

    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    width = max(1, size // 56)
    for p, q in segments:
        draw.line([px(p), px(q)], fill=(0, 0, 0), width=width)
    for m in marks:
        draw.line([px(p) for p in m], fill=(0, 0, 0), width=max(1, width // 2))
    font = ImageFont.load_default(size=max(9, size // 10))
    for p, text in labels:
        draw.text(px(p), text, fill=(200, 0, 0) if text == "x" else (0, 0, 160), font=font, anchor="mm")
    return image
