"""Prompt templates of the bridging passes: `{name}` placeholders, everything else literal.

Only `{identifier}` is a placeholder, so a prompt may carry LaTeX such as `\\boxed{}` unescaped (which
`str.format` would reject). Each pass fills the fields it has (`PASS_FIELDS`); a template must use the
ones in `REQUIRED` and no unknown ones, checked before any model loads.
"""
from __future__ import annotations

import re

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

# What each template may use (and must use: the paper's inputs to that step, Vision-R1 Sec. 3.1).
PASS_FIELDS = {
    "pseudo_cot": ("question", "answer"),
    "description": ("question", "answer", "pseudo_cot"),
    "reasoning": ("question", "description"),   # no image and no answer: the reasoner sees text only
    "format": ("reasoning", "answer"),
}
REQUIRED = {
    "pseudo_cot": ("question", "answer"),
    "description": ("question", "pseudo_cot"),
    "reasoning": ("question", "description"),
    "format": ("reasoning", "answer"),
}


def placeholders(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def check_template(template, pass_name: str, key: str) -> None:
    """ValueError naming `key` when the template is not a string, lacks a required field or uses an unknown one."""
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"{key}={template!r}: expected a non-empty string")
    used = set(placeholders(template))
    unknown = sorted(used - set(PASS_FIELDS[pass_name]))
    if unknown:
        raise ValueError(f"{key}: unknown placeholder(s) {['{' + u + '}' for u in unknown]}; "
                         f"this pass fills {['{' + f + '}' for f in PASS_FIELDS[pass_name]]}")
    missing = [f for f in REQUIRED[pass_name] if f not in used]
    if missing:
        raise ValueError(f"{key}: must contain {['{' + m + '}' for m in missing]}")


def fill(template: str, **fields) -> str:
    """The template with each `{name}` of `fields` replaced (in one substitution: a value's own braces stay)."""
    return _PLACEHOLDER.sub(lambda m: str(fields[m.group(1)]) if m.group(1) in fields else m.group(0), template)
