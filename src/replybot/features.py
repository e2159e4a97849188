"""Character n-gram TF-IDF features, hand-rolled so the query path needs no scikit-learn import."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

import numpy as np

_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC, lower case, every number → 0: prices differ, their role does not."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _DIGITS.sub("0", text)
    return _SPACES.sub(" ", text).strip()


def char_ngrams(text: str, n_min: int = 1, n_max: int = 3) -> Counter[str]:
    norm = f"^{normalize(text)}$"
    grams: Counter[str] = Counter()
    for n in range(n_min, n_max + 1):
        for i in range(len(norm) - n + 1):
            gram = norm[i : i + n]
            if gram.strip():
                grams[gram] += 1
    return grams


class NgramFeaturizer:
    """Sublinear TF-IDF over character 1-3 grams, L2-normalised (as TfidfVectorizer would)."""

    def __init__(self, min_df: int = 2, max_chars: int = 400):
        self.min_df = min_df
        self.max_chars = max_chars
        self.vocab_: dict[str, int] | None = None
        self.idf_: np.ndarray | None = None

    def fit(self, texts: list[str]) -> NgramFeaturizer:
        df: Counter[str] = Counter()
        for text in texts:
            df.update(set(char_ngrams(text[: self.max_chars])))
        kept = sorted(g for g, c in df.items() if c >= self.min_df)
        self.vocab_ = {g: i for i, g in enumerate(kept)}
        n = len(texts)
        self.idf_ = np.array([math.log((1 + n) / (1 + df[g])) + 1 for g in kept], dtype=np.float32)
        return self

    @property
    def size(self) -> int:
        if self.vocab_ is None:
            raise RuntimeError("NgramFeaturizer used before fit()")
        return len(self.vocab_)

    def transform_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Sparse row as (indices, values)."""
        if self.vocab_ is None or self.idf_ is None:
            raise RuntimeError("NgramFeaturizer used before fit()")
        idx, val = [], []
        for gram, count in char_ngrams(text[: self.max_chars]).items():
            j = self.vocab_.get(gram)
            if j is not None:
                idx.append(j)
                val.append((1 + math.log(count)) * self.idf_[j])
        indices = np.array(idx, dtype=np.int64)
        values = np.array(val, dtype=np.float32)
        norm = float(np.linalg.norm(values))
        if norm > 0:
            values /= norm
        return indices, values

    def transform(self, texts: list[str]):
        """A scipy CSR matrix, for training only."""
        from scipy.sparse import csr_matrix

        data, indices, indptr = [], [], [0]
        for text in texts:
            i, v = self.transform_one(text)
            indices.append(i)
            data.append(v)
            indptr.append(indptr[-1] + len(i))
        return csr_matrix(
            (np.concatenate(data) if data else np.zeros(0, np.float32),
             np.concatenate(indices) if indices else np.zeros(0, np.int64),
             np.array(indptr)),
            shape=(len(texts), self.size),
            dtype=np.float32,
        )

    def to_state(self) -> dict:
        return {"vocab": list(self.vocab_ or {}), "idf": self.idf_, "min_df": self.min_df}

    @classmethod
    def from_state(cls, state: dict) -> NgramFeaturizer:
        obj = cls(min_df=int(state["min_df"]))
        obj.vocab_ = {g: i for i, g in enumerate(state["vocab"])}
        obj.idf_ = np.asarray(state["idf"], dtype=np.float32)
        return obj
