"""Keeping symbolic checks from hanging a training step: a hard time bound in every execution context.

math-verify and sympy can run for minutes on a few characters (`9^{9^{9}}`, `\\binom{10^{100}}{10^{50}}`),
much of it inside single C calls (big-integer arithmetic) that no Python-level interrupt stops. A SIGALRM
timer (math-verify's own timeouts) cannot stop those either, and cannot even be armed off the main thread
(a reward scored in a worker thread). So the bound comes from a process we can kill:

* `cheap` inputs, short plain arithmetic (digits and `+-*/.,()$%°`, `\\frac`, `\\sqrt`, `\\pi`; at most 32
  characters, no powers, factorials, letters, brackets or `=`), run in-process: sympy reads them in
  milliseconds, so `<answer>70</answer>` costs what it always did.
* everything else runs through `bounded`, in a worker process (`python -m vlmrl.scoring._worker`) that has the
  symbolic stack imported and answers one pickled call at a time. Every read and write on the parent's side
  of its pipes is non-blocking and waits at most until the call's deadline (`select`), and the frames carry a
  magic header, so a worker that hangs, dies or writes garbage costs at most `seconds`: it is killed, the
  call gets its `default` ("not equal"), and a replacement starts at once. A worker's start-up (imports,
  ~1 s) waits up to `STARTUP_SECONDS` and is not counted in `seconds`. Workers are plain subprocesses
  (`Popen`, not `fork` of a threaded trainer) with dedicated pipes; any thread may use them, one call per
  worker at a time; they exit when the parent does. Each costs ~100 MB.

Scorers also refuse inputs that are too long or `explosive` (power towers, huge exponents or factorials)
before any symbolic work, so a batch of hostile completions does not cost a full timeout each. That filter is
a shortcut; the kill is the bound.
"""
from __future__ import annotations

import atexit
import os
import pickle
import re
import select
import subprocess
import sys
import threading
import time
import warnings
from typing import Callable, TypeVar

T = TypeVar("T")

SECONDS = 2.0                # compute time of one symbolic call
STARTUP_SECONDS = 30.0       # a worker's start-up, waited for separately
MAX_SYMBOLIC_CHARS = 1000
CHEAP_MAX_CHARS = 32
# A power inside an exponent, a 4+ digit exponent, or a 4+ digit factorial: what makes sympy evaluate
# astronomically large numbers.
_EXPLOSIVE = re.compile(r"\^\s*\{[^{}]*(?:\{[^{}]*)?\^"      # 2^{2^{2}}, 2^{\frac{1}{2}^{...}}
                        r"|\^\s*\w+\s*\^"                       # 2^2^2
                        r"|\*\*\s*\(?\s*\w+\s*\)?\s*\*\*"            # 9**9**9
                        r"|(?:\^|\*\*)\s*\{?\s*\(?\s*\d{4,}"    # 9^{99999}
                        r"|\d{4,}\s*!")
_CHEAP_COMMAND = re.compile(r"\\(?:d?frac|tfrac|sqrt|pi|circ|degree|cdot|times|div|left|right|%)(?![A-Za-z])")
_CHEAP_REST = re.compile(r"[\d\s.,+\-*/(){}$%°]*")
_MAGIC = b"VLMRL\x01"
_HEADER = len(_MAGIC) + 8
IN_WORKER = False  # set inside a worker, which runs every check in-process


def explosive(text: str, max_chars: int = MAX_SYMBOLIC_CHARS) -> bool:
    """True for inputs too long or too power-heavy to be worth a symbolic check."""
    return len(text) > max_chars or _EXPLOSIVE.search(text) is not None


def cheap(text: str) -> bool:
    """True for short plain arithmetic, which sympy reads in milliseconds (see the module docstring)."""
    return (len(text) <= CHEAP_MAX_CHARS and "**" not in text
            and _CHEAP_REST.fullmatch(_CHEAP_COMMAND.sub(" ", text)) is not None)


def symbolic(fn: Callable[..., T], args: tuple, default: T, seconds: float = SECONDS) -> T:
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
    worker = _POOL.acquire()
    if worker is None:
        return default
    try:
        ok, value = worker.call((fn, args), time.monotonic() + seconds)
    except Exception:  # timed out, died, garbled or unpicklable: the worker is not reused
        _POOL.discard(worker)
        return default
    _POOL.release(worker)
    return value if ok else default


def warm(workers: int = 1, wait: bool = False) -> None:
    """Start `workers` idle workers now (in the background, or `wait` until they are ready), so a first
    hard input does not wait for one."""
    _POOL.prestart(workers)
    if wait:
        _POOL.wait_ready(time.monotonic() + STARTUP_SECONDS)


# ---------------------------------------------------------------- framing (shared with _worker)
def frame(obj) -> bytes:
    payload = pickle.dumps(obj)
    return _MAGIC + len(payload).to_bytes(8, "big") + payload


def header_length(header: bytes) -> int:
    """The payload length of a frame header; ValueError for anything that is not one."""
    if len(header) != _HEADER or not header.startswith(_MAGIC):
        raise ValueError("not a scoring-worker frame")
    return int.from_bytes(header[len(_MAGIC):], "big")


class _Worker:
    """One worker process and the parent's ends of its two pipes (non-blocking, deadline-bounded)."""

    def __init__(self):
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vlmrl.scoring._worker", str(to_child), str(from_child)],
                pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        except BaseException:
            for fd in (self._out, self._in):
                os.close(fd)
            raise
        finally:
            os.close(to_child)
            os.close(from_child)
        os.set_blocking(self._out, False)
        os.set_blocking(self._in, False)
        self.ready = False

    def wait_ready(self, deadline: float) -> bool:
        if not self.ready:
            try:
                self.ready = self._read(deadline) == "ready"
            except Exception:
                return False
        return self.ready

    def call(self, request, deadline: float):
        self._write(frame(request), deadline)
        return self._read(deadline)

    def _write(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            if not select.select([], [self._out], [], _remaining(deadline))[1]:
                raise TimeoutError
            view = view[os.write(self._out, view[:1 << 20]):]

    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            if not select.select([self._in], [], [], _remaining(deadline))[0]:
                raise TimeoutError
            chunk = os.read(self._in, min(n - got, 1 << 20))
            if not chunk:
                raise EOFError("scoring worker exited")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read(self, deadline: float):
        return pickle.loads(self._read_exact(header_length(self._read_exact(_HEADER, deadline)), deadline))

    def close(self, kill: bool = True) -> None:
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass
        if kill:
            self.process.kill()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


class _Pool:
    """Idle workers and workers still starting, shared by the threads of one process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._starting: list[_Worker] = []
        self._pid = os.getpid()
        self._warned = False

    def _reset_if_forked(self) -> None:
        if self._pid != os.getpid():  # a forked child: the parent's workers are the parent's
            for worker in self._idle + self._starting:
                worker.close(kill=False)
            self._idle, self._starting, self._pid = [], [], os.getpid()

    def acquire(self) -> _Worker | None:
        with self._lock:
            self._reset_if_forked()
            if self._idle:
                return self._idle.pop()
            worker = self._starting.pop(0) if self._starting else None
        try:
            worker = worker or _Worker()
        except OSError as error:
            return self._unavailable(error)
        if worker.wait_ready(time.monotonic() + STARTUP_SECONDS):
            return worker
        worker.close()
        return self._unavailable("it did not start")

    def _unavailable(self, why) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(f"vlmrl: no symbolic-scoring worker ({why}); hard answers score 0", RuntimeWarning)
        return None

    def release(self, worker: _Worker) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._idle.append(worker)

    def discard(self, worker: _Worker) -> None:
        """Kill `worker`; keep two spares, so that back-to-back kills find one already started."""
        worker.close()
        self.prestart(2)

    def prestart(self, workers: int) -> None:
        """Start workers until `workers` are idle or starting (Popen returns at once; they boot meanwhile)."""
        with self._lock:
            self._reset_if_forked()
            for _ in range(workers - len(self._idle) - len(self._starting)):
                try:
                    self._starting.append(_Worker())
                except OSError:
                    return

    def wait_ready(self, deadline: float) -> None:
        with self._lock:
            starting = list(self._starting)
        for worker in starting:
            worker.wait_ready(deadline)

    def shutdown(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                for worker in self._idle + self._starting:
                    worker.close()
            self._idle, self._starting = [], []


_POOL = _Pool()
atexit.register(_POOL.shutdown)
