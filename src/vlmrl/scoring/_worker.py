"""A symbolic-check worker (`guard.bounded`): `python -m vlmrl.scoring._worker`.

Imports and exercises the symbolic stack once, says "ready", then answers pickled `(fn, args)` calls from
stdin with `(ok, value)` on the original stdout, one at a time, until stdin closes. Anything the checks print
goes to stderr. The parent kills it when a call runs out of time."""
import os
import pickle
import sys
from multiprocessing.connection import Connection

from . import guard, mmmath, verify


def serve() -> None:
    guard.IN_WORKER = True
    replies = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # stray prints must not corrupt the reply stream
    calls = Connection(0, writable=False)
    verify._verify_now("$8\\sqrt{3}$", "$\\sqrt{192}$", True)
    mmmath.symbolic_equal("\\frac{1}{2}", "x=0.5")
    replies.send("ready")
    while True:
        try:
            fn, args = pickle.loads(calls.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            result = (True, fn(*args))
        except Exception:
            result = (False, None)
        replies.send(result)


if __name__ == "__main__":
    sys.exit(serve())
