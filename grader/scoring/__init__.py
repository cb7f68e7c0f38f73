"""Scoring on the host: the only stage that sees the labels."""
