"""Where grade --all runs the sandboxes: this machine's worker pool (local) or a Ray cluster (ray)."""
