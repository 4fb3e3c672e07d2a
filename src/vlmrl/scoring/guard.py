"""Keeping symbolic checks from hanging a training step.

math-verify and sympy can run for minutes on a few characters (`9^{9^{9}}`). The only interrupt Python
offers is a signal, and signals can be set only from the main thread: there `time_limited` arms a SIGALRM
timer (and math-verify is given its own timeouts). Off the main thread no timer is possible, so scorers
refuse inputs that look explosive (`explosive`) and run the rest unguarded; that is a heuristic, not a bound.
"""
from __future__ import annotations

import re
import signal
import threading
from typing import Callable, TypeVar

T = TypeVar("T")

MAX_SYMBOLIC_CHARS = 1000
# A power inside an exponent, a 4+ digit exponent, or a 4+ digit factorial: what makes sympy evaluate
# astronomically large numbers.
_EXPLOSIVE = re.compile(r"\^\s*\{[^{}]*(?:\{[^{}]*)?\^"      # 2^{2^{2}}, 2^{\frac{1}{2}^{...}}
                        r"|\^\s*\w+\s*\^"                       # 2^2^2
                        r"|(?:\^|\*\*)\s*\{?\s*\(?\s*\d{4,}"    # 9^{99999}
                        r"|\d{4,}\s*!")


class TimeLimit(Exception):
    """Raised inside a `time_limited` call when its time runs out."""


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def explosive(text: str, max_chars: int = MAX_SYMBOLIC_CHARS) -> bool:
    """True for inputs too long or too power-heavy to hand to sympy without a timer."""
    return len(text) > max_chars or _EXPLOSIVE.search(text) is not None


def time_limited(fn: Callable[[], T], seconds: float, default: T) -> T:
    """fn(), or `default` if it raises or (main thread only) runs past `seconds`."""
    if not in_main_thread():
        try:
            return fn()
        except Exception:
            return default

    def _expire(signum, frame):
        raise TimeLimit

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    except Exception:  # TimeLimit and whatever sympy raises on odd input
        return default
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
