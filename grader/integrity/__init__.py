"""Integrity: evidence that a model was replayed, test-trained or copied, for the TA to judge.

Flags never change points; they go to the TA with their evidence (overrides.yaml decides).
"""
