"""Start checkpoints: planned, found (shipped, cached) or built by runs (the tiny instruct model, cold starts)."""
