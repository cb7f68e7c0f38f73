"""rubric.yaml: its typed model, loading with errors that name the key, and the points it gives."""
