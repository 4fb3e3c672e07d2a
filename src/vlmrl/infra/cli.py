"""The entries' errors: a config or input error is one line on stderr and exit status 2; any other error keeps
its traceback.

Every entry (train.py, evaluate.py, bridge.py, cold_start.py, `python -m vlmrl.report`) runs under
`one_line_errors`. A `ConfigError` (a bad value: `key=value: expected ...`) or an `InputError` (a dataset,
model, checkpoint or run dir that is missing or unreadable: where it was looked for, how to get it there) is
the user's to fix, and a traceback would only bury its line; any other exception is ours, and keeps it.
`VLMRL_TRACEBACK=1` re-raises the first kind too (the line says so). Nothing here imports the core, so an entry
imports it before anything heavy.
"""
from __future__ import annotations

import functools
import os
import sys

from ..schema import ConfigError, InputError

TRACEBACK_ENV = "VLMRL_TRACEBACK"
EXIT_STATUS = 2          # argparse's status for a usage error


def error_line(prog: str, error: BaseException) -> str:
    """`prog: message (how to see the traceback)`, on one line whatever the message holds."""
    message = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return f"{prog}: {message} ({TRACEBACK_ENV}=1 prints the traceback)"


def traceback_wanted() -> bool:
    return os.environ.get(TRACEBACK_ENV, "").strip().lower() not in ("", "0", "false", "no")


class one_line_errors:
    """Run a `with` body, or a function it decorates; a ConfigError or InputError becomes `error_line` on stderr
    and SystemExit(EXIT_STATUS), unless TRACEBACK_ENV asks for the traceback. A class, not a generator-based
    context manager, so a decorated task function pickles (Hydra's submitit launcher sends it to its jobs)."""

    def __init__(self, prog: str):
        self.prog = prog

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb) -> bool:
        if error is None or not isinstance(error, (ConfigError, InputError)) or traceback_wanted():
            return False
        print(error_line(self.prog, error), file=sys.stderr, flush=True)
        raise SystemExit(EXIT_STATUS) from None

    def __call__(self, func):
        @functools.wraps(func)
        def wrapped(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return wrapped
