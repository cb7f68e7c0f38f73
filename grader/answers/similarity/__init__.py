"""Similarity methods behind one small interface, registered by name ("minilm", "tfidf")."""

from .base import METHOD_ENV, PairFeatures, SimilarityMethod, get_method, resolve_method_name

__all__ = ["METHOD_ENV", "PairFeatures", "SimilarityMethod", "get_method", "resolve_method_name"]
