"""A small deterministic encoder for unit tests: hashed character n-grams, normalized."""

from __future__ import annotations

import hashlib

import numpy as np


class FakeEncoder:
    model_id = "fake-ngram-64"
    dim = 64

    def __init__(self):
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, text in enumerate(texts):
            padded = f"^{text}$"
            for n in (1, 2):
                for i in range(len(padded) - n + 1):
                    h = int(hashlib.md5(padded[i : i + n].encode()).hexdigest()[:8], 16)
                    out[r, h % self.dim] += 1.0
            norm = np.linalg.norm(out[r])
            out[r] = out[r] / norm if norm else out[r]
            if not norm:
                out[r, 0] = 1.0
        return out


class RecordingEncoder(FakeEncoder):
    """A FakeEncoder that keeps every text it was asked to encode."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return super().encode(texts)
