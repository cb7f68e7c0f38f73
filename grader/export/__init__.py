"""Grades out: Blackboard Grade Center, Canvas, and a full CSV for the instructor."""
