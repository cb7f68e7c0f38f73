"""Sandboxes: the runner that executes student code, and the backends that isolate it."""
