"""The answers' sentence vectors kept beside the class's results (results/review-vectors.npz), so that a new
`grader review` on the same results encodes only the answers it has not seen (MiniLM takes about 25 ms an answer
here: half a minute for a class of 300).

One uncompressed .npz of three arrays: `model` (the encoder's key, UTF-8 bytes), `hashes` (the sha256 of each
answer's text, N x 32 bytes) and `vectors` (N x D float32). Student text is hostile and is never written: a vector
is found by its text's hash, and only under the key of the model that made it, so a changed answer or another
model is never served an old vector.

The file is written whole (write_atomic) after merging what is on disk at that moment: two servers on one results
folder keep each other's vectors, unless both write at once, and then one of them encodes some answers again
later; a reader sees the old file or the new, never half of one. A file that is not one of ours (unreadable, other
members, shapes or values, too large) is ignored with a warning naming it, and written anew.
"""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.atomic_write import write_atomic

log = logging.getLogger(__name__)

VECTORS_NAME = "review-vectors.npz"
MAX_BYTES = 64 * 1024 * 1024  # about 43,000 MiniLM vectors: dozens of classes' worth of regraded answers
MAX_DIMENSIONS = 4096
DIGEST_BYTES = 32
_MEMBERS = {"model.npy", "hashes.npy", "vectors.npy"}
_HEADROOM = 64 * 1024  # the zip's and the arrays' headers

Vectors = dict[bytes, np.ndarray]


def text_digest(text: str) -> bytes:
    """The key of a text's vector: its sha256 as UTF-8 (a lone surrogate from a broken file is kept)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class KeyedEncoder:
    """A sentence encoder that names its model: what it encodes may be kept on disk under `key`."""

    key: str
    encode: Callable[[list[str]], np.ndarray]

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)


class NotOurs(ValueError):
    """The file is not a vector file this module wrote; the message says what is wrong."""


class AnswerVectorFile:
    """load/save of one model's answer vectors in one file; a failure to read or write costs speed, never the
    review."""

    def __init__(self, path: Path, model_key: str) -> None:
        self.path = Path(path)
        self.model_key = model_key

    @classmethod
    def of_results(cls, results_dir: Path, encode: object) -> AnswerVectorFile | None:
        """The file beside the results for an encoder that names its model (KeyedEncoder); None for one that
        does not (its vectors stay in memory) and for no encoder (TF-IDF: nothing is stored)."""
        key = getattr(encode, "key", None)
        return cls(Path(results_dir) / VECTORS_NAME, key) if isinstance(key, str) and key else None

    def load(self, *, quiet: bool = False) -> Vectors:
        """The stored vectors of this model by text digest; empty when there is no file, when another model
        wrote it, or when it is not ours (then a warning names it, unless quiet)."""
        try:
            with open(self.path, "rb") as stream:
                data = stream.read(MAX_BYTES + 1)
            model, hashes, vectors = _parse(data)
        except FileNotFoundError:
            return {}
        except (OSError, NotOurs) as error:
            if not quiet:
                reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
                log.warning("%s: ignored, the answers are encoded again and the file rewritten (%s)", self.path, reason)
            return {}
        if model != self.model_key:
            if not quiet:
                log.info("%s: vectors of another model (%s); the answers are encoded again", self.path, model[:40])
            return {}
        packed = hashes.tobytes()
        return {packed[i * DIGEST_BYTES : (i + 1) * DIGEST_BYTES]: row for i, row in enumerate(vectors)}

    def save(self, vectors: Mapping[bytes, np.ndarray]) -> None:
        """Writes `vectors` with those on disk now (another server's too); when the file would outgrow
        MAX_BYTES, the ones on disk make way."""
        if not vectors:
            return
        dimensions = len(next(iter(vectors.values())))
        stored = {d: v for d, v in self.load(quiet=True).items() if len(v) == dimensions}
        merged = {**stored, **vectors}
        capacity = (MAX_BYTES - _HEADROOM) // (DIGEST_BYTES + 4 * dimensions)
        if len(merged) > capacity:
            merged = dict(vectors)
        if len(merged) > capacity or not 0 < dimensions <= MAX_DIMENSIONS:
            log.info("%s: %d vectors of %d values do not fit; kept in memory only", self.path, len(merged), dimensions)
            return
        buffer = io.BytesIO()
        np.savez(
            buffer,
            model=np.frombuffer(self.model_key.encode("utf-8"), dtype=np.uint8),
            hashes=np.frombuffer(b"".join(merged), dtype=np.uint8).reshape(-1, DIGEST_BYTES),
            vectors=np.stack([np.asarray(v, dtype=np.float32) for v in merged.values()]),
        )
        try:
            write_atomic(self.path, buffer.getvalue())
        except OSError as error:  # a read-only or full disk: the next review encodes again
            log.info("%s: not written (%s)", self.path, error.strerror or error)


def _parse(data: bytes) -> tuple[str, np.ndarray, np.ndarray]:
    """(model key, N x 32 digests, N x D vectors) of a file's bytes, each member checked before it is used."""
    if len(data) > MAX_BYTES:
        raise NotOurs(f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
        if {member.filename for member in members} != _MEMBERS or len(members) != len(_MEMBERS):
            raise NotOurs(f"members {sorted(member.filename for member in members)[:5]}, not {sorted(_MEMBERS)}")
        if sum(member.file_size for member in members) > MAX_BYTES:  # a compressed member may unpack to any size
            raise NotOurs(f"its members unpack to more than {MAX_BYTES // (1024 * 1024)} MiB")
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            model, hashes, vectors = archive["model"], archive["hashes"], archive["vectors"]
    except NotOurs:
        raise
    except (ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise NotOurs(f"not a readable .npz: {str(error)[:200]}") from None
    if model.dtype != np.uint8 or model.ndim != 1 or hashes.dtype != np.uint8 or vectors.dtype != np.float32:
        raise NotOurs(f"types {model.dtype}, {hashes.dtype}, {vectors.dtype}, not uint8, uint8, float32")
    if hashes.ndim != 2 or hashes.shape[1] != DIGEST_BYTES or vectors.ndim != 2 or len(vectors) != len(hashes):
        raise NotOurs(f"shapes {hashes.shape} and {vectors.shape}, not (N, {DIGEST_BYTES}) and (N, D)")
    if not 0 < vectors.shape[1] <= MAX_DIMENSIONS or not np.isfinite(vectors).all():
        raise NotOurs("vectors of no plausible size or with values that are not finite")
    try:
        key = model.tobytes().decode("utf-8")
    except UnicodeDecodeError:
        raise NotOurs("a model key that is not UTF-8") from None
    return key, hashes, vectors
