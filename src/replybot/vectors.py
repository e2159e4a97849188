"""Vectors of texts already encoded, kept between index builds.

Editing one draft, cue or example changes the corpus hash, so the index is trained again. Without
this store all ~8,700 texts would be encoded again (about 40 s on two cores) for the few that
changed; with it only those are, and an edit costs the training alone (about 10 s). One file per
encoder model: vectors of another model never mix in.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

# Texts kept, newest build first: the shipped corpus has ~8,700; room for a few shops' edits
# (30,000 x 384 floats is 46 MB) without growing for ever.
MAX_TEXTS = 30_000


class VectorStore:
    """text -> unit vector for one encoder model, in one file: the cache's (in_cache) or the
    prebuilt vectors of the shipped corpus (config.PREBUILT_VECTORS)."""

    def __init__(self, path: Path, model_id: str, dim: int):
        self.path = Path(path)
        self.model_id = model_id
        self.dim = dim

    @classmethod
    def in_cache(cls, cache_root: Path, model_id: str, dim: int) -> VectorStore:
        digest = hashlib.sha256(model_id.encode()).hexdigest()[:16]
        return cls(Path(cache_root) / "vectors" / f"{digest}.npz", model_id, dim)

    def load(self) -> dict[str, np.ndarray]:
        """What earlier builds encoded; empty when the file is missing, damaged or of another model."""
        try:
            with np.load(self.path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))
                vecs = np.asarray(z["vectors"], dtype=np.float32)
        except Exception:  # missing, truncated or not an npz at all: encode again, as without a store
            return {}
        texts = meta.get("texts") if isinstance(meta, dict) else None
        if (
            not isinstance(texts, list)
            or meta.get("model_id") != self.model_id
            or vecs.shape != (len(texts), self.dim)
            or not np.isfinite(vecs).all()
        ):
            return {}
        return dict(zip(texts, vecs))

    def save(self, current: dict[str, np.ndarray], earlier: dict[str, np.ndarray]) -> bool:
        """Keep this build's texts and, up to MAX_TEXTS, earlier ones (an undone edit costs
        nothing). Written to a temporary file and renamed, so a reader never sees half a file.
        Returns whether it was written."""
        texts = list(current) + [t for t in earlier if t not in current]
        texts = texts[:MAX_TEXTS]
        if not texts:
            return False
        vecs = np.stack([current[t] if t in current else earlier[t] for t in texts]).astype(np.float32)
        meta = json.dumps({"model_id": self.model_id, "texts": texts}, ensure_ascii=False).encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=self.path.parent)
        except OSError:
            return False  # a cache we cannot write only costs the next edit its speed
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, meta=np.frombuffer(meta, dtype=np.uint8), vectors=vecs)
            os.replace(tmp, self.path)
        except OSError:
            return False  # a full disk likewise
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True


def known_vectors(cache_root: Path, prebuilt: Path | None, model_id: str, dim: int) -> tuple[VectorStore, dict, dict]:
    """The cache's store, what it holds, and what the prebuilt file holds: every vector a build
    need not encode. The cache keeps only what the prebuilt file lacks."""
    store = VectorStore.in_cache(cache_root, model_id, dim)
    shipped = VectorStore(prebuilt, model_id, dim).load() if prebuilt else {}
    return store, store.load(), shipped
