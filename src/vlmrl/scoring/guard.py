"""Keeping symbolic checks from hanging a training step: a hard time bound in every execution context.

math-verify and sympy can run for minutes on a few characters (`9^{9^{9}}`, `\\binom{10^{100}}{10^{50}}`),
much of it inside single C calls (big-integer arithmetic) that no Python-level interrupt can stop. A SIGALRM
timer (math-verify's own timeouts) cannot stop those either, and cannot even be armed off the main thread
(a reward scored in a worker thread). So the bound comes from a process we can kill:

* `cheap` inputs, short plain arithmetic (digits, `+-*/.,()` but not `**`, `\\frac`, `\\sqrt`, `\\pi`, degree marks; no
  powers, factorials, letters, brackets or `=`), run in-process: sympy reads them in milliseconds, so
  `<answer>70</answer>` costs what it did.
* everything else (`bounded`) runs in a worker process, `python -m vlmrl.scoring._worker`, which has the
  symbolic stack imported and warm and answers one pickled call at a time over a pipe. The caller waits
  at most `seconds` in all, getting an idle worker (or starting one) included; when the time is up it
  kills a busy worker and the check gets its `default` ("not equal"). Killed workers are replaced in the
  background. Workers are plain subprocesses (not forked from the trainer), so any thread may use them;
  they exit when their parent does (their stdin closes). Each worker costs ~150 MB; there are as many as
  threads scoring at once.

Scorers also refuse inputs that are too long or `explosive` (power towers, huge exponents or factorials)
before any symbolic work, the same way in every context, so a batch of hostile completions does not cost a
full timeout each. That filter is a shortcut; the process kill is the bound.
"""
from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Callable, TypeVar

T = TypeVar("T")

MAX_SYMBOLIC_CHARS = 1000
CHEAP_MAX_CHARS = 32
# A power inside an exponent, a 4+ digit exponent, or a 4+ digit factorial: what makes sympy evaluate
# astronomically large numbers.
_EXPLOSIVE = re.compile(r"\^\s*\{[^{}]*(?:\{[^{}]*)?\^"      # 2^{2^{2}}, 2^{\frac{1}{2}^{...}}
                        r"|\^\s*\w+\s*\^"                       # 2^2^2
                        r"|(?:\^|\*\*)\s*\{?\s*\(?\s*\d{4,}"    # 9^{99999}
                        r"|\d{4,}\s*!")
_CHEAP_COMMAND = re.compile(r"\\(?:d?frac|tfrac|sqrt|pi|circ|degree|cdot|times|div|left|right|%)(?![A-Za-z])")
_CHEAP_REST = re.compile(r"[\d\s.,+\-*/(){}$%°]*")
IN_WORKER = False  # set inside a worker, which runs every check in-process


def explosive(text: str, max_chars: int = MAX_SYMBOLIC_CHARS) -> bool:
    """True for inputs too long or too power-heavy to be worth a symbolic check."""
    return len(text) > max_chars or _EXPLOSIVE.search(text) is not None


def cheap(text: str) -> bool:
    """True for short plain arithmetic, which sympy reads in milliseconds (see the module docstring)."""
    return (len(text) <= CHEAP_MAX_CHARS and "**" not in text
            and _CHEAP_REST.fullmatch(_CHEAP_COMMAND.sub(" ", text)) is not None)


def symbolic(fn: Callable[..., T], args: tuple, seconds: float, default: T) -> T:
    """fn(*args), in-process when every string argument is `cheap`, else `bounded`. Never raises.

    `fn` must be a module-level function of an importable module (it is pickled by name)."""
    if IN_WORKER or all(cheap(a) for a in args if isinstance(a, str)):
        try:
            return fn(*args)
        except Exception:
            return default
    return bounded(fn, args, seconds, default)


def bounded(fn: Callable[..., T], args: tuple, seconds: float, default: T) -> T:
    """fn(*args) in a worker process; `default` after `seconds` (the worker is killed) or on any error."""
    deadline = time.monotonic() + seconds
    worker = _POOL.acquire(deadline)
    if worker is None:
        return default
    try:
        worker.send((fn, args))
        ok, value = worker.receive(deadline)
    except Exception:  # timed out, or the worker died or could not pickle: it is not reused
        _POOL.discard(worker)
        return default
    _POOL.release(worker)
    return value if ok else default


def warm(workers: int = 1) -> None:
    """Start `workers` idle workers now (about a second each), so the first hostile input does not wait."""
    _POOL.prestart(workers)


class _Worker:
    """One `python -m vlmrl.scoring._worker` process and the pipe ends to talk to it."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-m", "vlmrl.scoring._worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        # The connections own duplicates of the pipe ends; the Popen file objects are closed right away.
        self._to = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self._from = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()
        self.ready = False

    def wait_ready(self, deadline: float) -> bool:
        if not self.ready and self._from.poll(max(0.0, deadline - time.monotonic())):
            self.ready = self._from.recv() == "ready"
        return self.ready

    def send(self, call) -> None:
        self._to.send_bytes(pickle.dumps(call))

    def receive(self, deadline: float):
        if not self._from.poll(max(0.0, deadline - time.monotonic())):
            raise TimeoutError
        return self._from.recv()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._to.close()
        self._from.close()


class _Pool:
    """Idle warm workers, shared by the threads of one process (a forked child starts its own)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._starting: list[_Worker] = []
        self._pid = os.getpid()

    def _reset_if_forked(self) -> None:
        if self._pid != os.getpid():  # the parent's workers are the parent's; never share their pipes
            self._idle, self._starting, self._pid = [], [], os.getpid()

    def acquire(self, deadline: float) -> _Worker | None:
        with self._lock:
            self._reset_if_forked()
            if self._idle:
                return self._idle.pop()
            worker = self._starting.pop() if self._starting else None
        if worker is None:
            try:
                worker = _Worker()
            except OSError:
                return None
        if worker.wait_ready(deadline):
            return worker
        with self._lock:  # not ready in time: let it finish starting for the next caller
            self._starting.append(worker)
        return None

    def release(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def discard(self, worker: _Worker) -> None:
        worker.kill()
        self.prestart(1)

    def prestart(self, workers: int) -> None:
        """Start workers in the background until `workers` are idle or starting."""
        with self._lock:
            self._reset_if_forked()
            missing = workers - len(self._idle) - len(self._starting)
        for _ in range(max(0, missing)):
            threading.Thread(target=self._start_one, name="vlmrl-scoring-worker", daemon=True).start()

    def _start_one(self) -> None:
        try:
            worker = _Worker()
        except OSError:
            return
        with self._lock:
            self._starting.append(worker)
        if worker.wait_ready(time.monotonic() + 60):
            with self._lock:
                if worker in self._starting:
                    self._starting.remove(worker)
                    self._idle.append(worker)


_POOL = _Pool()
