"""Whether a Hugging Face hub model or dataset can be had without waiting on a network that is not there.

On a machine without a network (a cluster's compute node, `HF_HUB_OFFLINE=1`), transformers and datasets
retry the hub for minutes before saying that a repo is not cached. So before a hub id is loaded, `hub_down`
answers in at most `PROBE_S` seconds whether the hub can be reached (offline mode, or one TCP connect to the
endpoint or to its proxy), and the callers fail at once, in one line, when the repo is neither local nor
cached. When the hub is down, the process is switched to offline mode, so that what is cached loads from
the cache without a retry.
"""
from __future__ import annotations

import functools
import os
import socket
import sys
import urllib.request
from urllib.parse import urlparse

from ..schema import MissingInput

PROBE_S = 3.0


def hub_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _reach(endpoint: str) -> str | None:
    """None if a TCP connection to `endpoint` (or the proxy that serves it) opens within PROBE_S, else why not."""
    url = urlparse(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxied = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxied.hostname or "", proxied.port or 80
    try:
        socket.create_connection((host, port), timeout=PROBE_S).close()
    except OSError as error:
        return f"the hub {endpoint} is unreachable ({type(error).__name__}: {error})"
    return None


@functools.cache
def hub_down() -> str | None:
    """Why the hub cannot be used (`HF_HUB_OFFLINE=1`, or its endpoint unreachable), else None. Probed once per
    process; an unreachable hub switches huggingface_hub, transformers and datasets to offline mode."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE=1"
    reason = _reach(constants.ENDPOINT)
    if reason is not None:
        _go_offline()
    return reason


def _go_offline() -> None:
    # The libraries read their offline flags from module globals, set from the environment at import.
    from huggingface_hub import constants

    os.environ["HF_HUB_OFFLINE"] = "1"   # for child processes and for datasets when it is imported later
    constants.HF_HUB_OFFLINE = True
    if "datasets.config" in sys.modules:
        sys.modules["datasets.config"].HF_HUB_OFFLINE = True


def cached_model(repo_id: str) -> str | None:
    """The HF cache's snapshot dir of a hub model holding its config.json (a download that got that far), or None."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo_id, "config.json")
    return os.path.dirname(config) if isinstance(config, str) else None


def require_model(name: str, key: str) -> str | None:
    """A model `name` (a directory or a hub id) that can be loaded: local, in the HF cache, or with the hub reachable
    -> the local dir holding its config.json (None: only the hub has it); else MissingInput naming `key`, the
    repo id, where it was looked for and how to get it."""
    if os.path.isdir(os.path.expanduser(name)):
        return os.path.expanduser(name)
    cached = cached_model(name)
    if cached is not None:
        hub_down()   # offline then: the cached copy loads without a retry
        return cached
    reason = hub_down()
    if reason is not None:
        raise MissingInput(f"{key}={name!r}: not a local directory nor in the Hugging Face cache ({hub_cache()}), and "
                           f"{reason}; get it with `hf download {name} --local-dir <dir>` (where there is a network, "
                           f"then copy <dir> here) and set {key}=<dir>")
    return None


def missing_dataset(repo_id: str, split: str, looked: list[str], local_copy: str, reason: str) -> MissingInput:
    """The error for a hub dataset that is neither local nor cached while the hub is down (`reason`)."""
    return MissingInput(f"dataset {repo_id!r} (split {split!r}): not at {', '.join(looked)} nor in the Hugging Face "
                        f"cache ({hub_cache()}), and {reason}; get it with `hf download {repo_id} --repo-type dataset "
                        f"--local-dir {local_copy}` (where there is a network, then copy it here), or set "
                        f"data_root=<dir holding {repo_id}>")
