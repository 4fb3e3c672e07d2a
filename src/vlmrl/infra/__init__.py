"""Run infrastructure: what a run needs around the algorithm, none of it importing the core (run.py,
assemble.py, trainer.py). runlog.py: the run dir's metrics and samples files beside W&B, run names from overrides;
quiet.py: a clean console (third-party noise off); perf.py: the thread count and per-phase step timing,
throughput and peak memory; preemption.py: atomic checkpoints and a checkpoint on SIGTERM / SIGUSR1
(`resume=auto` is rundir.py's); resolvers.py: the OmegaConf resolvers the configs use (run-dir names, the repository
root); chat_http.py: the one OpenAI-compatible chat-completions POST shared by the LLM judge and the bridge;
cli.py: the entries' one-line errors; hub.py: whether a hub model or dataset can be had without a network.
"""
