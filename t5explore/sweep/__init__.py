"""Gin experiment grids -> run directories: expand, claim, run, resume, isolate failures, shard."""
