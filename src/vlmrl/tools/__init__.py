"""Command-line tools, each run as `python -m vlmrl.tools.<name>`: memory.py, the per-GPU memory table of
the real models at the papers' settings; relocate.py, which points a copied run dir's W&B offline runs at
their own files before `wandb sync`.
"""
