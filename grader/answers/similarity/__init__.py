"""Similarity methods behind one small interface, registered by name ("minilm", "tfidf")."""

from . import embedding as _embedding  # noqa: F401  (registers "minilm")
from . import tfidf as _tfidf  # noqa: F401  (registers "tfidf")
from .base import METHOD_ENV, PairFeatures, SimilarityMethod, get_method, method_names, resolve_method_name

__all__ = ["METHOD_ENV", "PairFeatures", "SimilarityMethod", "get_method", "method_names", "resolve_method_name"]
