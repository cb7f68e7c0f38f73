"""One JSON result per student: the model and its atomic store."""
