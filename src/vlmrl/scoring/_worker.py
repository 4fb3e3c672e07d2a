"""A symbolic-check worker (`guard.bounded`): `python -m vlmrl.scoring._worker <read fd> <write fd>`.

Imports and exercises the symbolic stack once, says "ready", then answers framed, pickled `(fn, args)` calls
with `(ok, value)`, one at a time, until its input closes or its parent is gone. Its stdout and stderr are
not read by anyone, so stray prints cannot corrupt the replies."""
import os
import sys
import threading
import time


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def serve(read_fd: int, write_fd: int) -> None:
    import pickle

    from . import guard, mmmath, verify

    guard.IN_WORKER = True
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    verify._verify_now("$8\\sqrt{3}$", "$\\sqrt{192}$", True)
    mmmath.expression_equal("\\frac{1}{2}", "0.5")
    _write_all(write_fd, guard.frame("ready"))
    while True:
        header = _read_exact(read_fd, guard._HEADER)
        if header is None:
            return
        payload = _read_exact(read_fd, guard.header_length(header))
        if payload is None:
            return
        try:
            fn, args = pickle.loads(payload)
            result = (True, fn(*args))
        except Exception:
            result = (False, None)
        try:
            reply = guard.frame(result)
        except Exception:  # an unpicklable result
            reply = guard.frame((False, None))
        _write_all(write_fd, reply)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
