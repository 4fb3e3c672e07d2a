"""Training stages whose output is a checkpoint the next stage reads (cold starts)."""
