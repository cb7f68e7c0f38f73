"""Submissions in: the Blackboard bulk download, and what each student uploaded."""
