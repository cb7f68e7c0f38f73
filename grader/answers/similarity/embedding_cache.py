"""Encodings of the rubric's own texts (reference answers, prompts) kept on disk by content hash.

Each `grader grade` is a fresh process; without this it would encode the same references again
every time. One file per text: `<cache>/embeddings/<model key>/<sha256 of the text>.npz`, written
atomically. A file is read with allow_pickle off and checked (members, dtypes, shapes, sizes,
finite values) before use; anything else is a miss, and the fresh encoding is written over it.
Students' answers are never written here: only texts the rubric supplies.

GRADER_EMBEDDINGS_CACHE relocates the cache (a folder) or turns it off ("off").
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from grader.atomic_write import write_atomic

from .minilm_encoder import Encoding

CACHE_ENV = "GRADER_EMBEDDINGS_CACHE"
_OFF = {"off", "0", "no", "none", "false"}
_MEMBERS = {"sentence", "tokens", "ids"}


def cache_root() -> Path | None:
    """Where encodings are kept, or None when the cache is turned off."""
    chosen = os.environ.get(CACHE_ENV, "").strip()
    if chosen.lower() in _OFF:
        return None
    if chosen:
        return Path(chosen).expanduser()
    try:
        if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
            base = Path(os.environ["LOCALAPPDATA"])
        elif sys.platform == "darwin":
            base = Path.home() / "Library" / "Caches"
        else:
            base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home directory to be found: no cache, grading goes on
        return None
    return base / "lab8-grader" / "embeddings"


class EmbeddingCache:
    """get/put of one model's encodings; every failure to read or write is a miss, never an error."""

    def __init__(self, folder: Path, *, hidden: int, max_tokens: int, vocab_size: int) -> None:
        self.folder = folder
        self.hidden, self.max_tokens, self.vocab_size = hidden, max_tokens, vocab_size
        # Three small arrays and the zip's headers; a larger file is not one of ours.
        self.max_bytes = 4 * hidden * (max_tokens + 1) + 8 * max_tokens + 4096

    @classmethod
    def for_model(cls, model_key: str, **shape: int) -> EmbeddingCache | None:
        root = cache_root()
        return None if root is None else cls(root / model_key, **shape)

    def path(self, text: str) -> Path:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        return self.folder / f"{digest}.npz"

    def get(self, text: str) -> Encoding | None:
        try:
            with open(self.path(text), "rb") as stream:
                data = stream.read(self.max_bytes + 1)
            if len(data) > self.max_bytes:
                return None
            archive = np.load(io.BytesIO(data), allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile) or set(archive.files) != _MEMBERS:
                return None
            encoding = Encoding(sentence=archive["sentence"], tokens=archive["tokens"], ids=archive["ids"])
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return None
        return encoding if self._plausible(encoding) else None

    def _plausible(self, e: Encoding) -> bool:
        n = len(e.ids)
        return (
            e.sentence.dtype == np.float32
            and e.tokens.dtype == np.float32
            and e.ids.dtype == np.int64
            and e.sentence.shape == (self.hidden,)
            and e.tokens.shape == (n, self.hidden)
            and e.ids.shape == (n,)
            and 2 <= n <= self.max_tokens
            and bool(np.isfinite(e.sentence).all() and np.isfinite(e.tokens).all())
            and bool(((e.ids >= 0) & (e.ids < self.vocab_size)).all())
        )

    def put(self, text: str, encoding: Encoding) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, sentence=encoding.sentence, tokens=encoding.tokens, ids=encoding.ids)
        with contextlib.suppress(OSError):  # a read-only or full disk costs speed, not the grade
            write_atomic(self.path(text), buffer.getvalue())
