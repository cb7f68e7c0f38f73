"""Sandboxes: what runs inside (inside/, never imported here), and the host side that isolates it."""
