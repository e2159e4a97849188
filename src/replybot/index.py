"""The search index and trained heads, built from the corpus and cached by content hash.

A cache entry is a folder named after sha256(model id, corpus content, format version); it is
written to a temporary folder and renamed into place, and a manifest of file checksums, written
last, tells a complete entry from a truncated or corrupt one, which is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from .classify import DialogueClassifier, LinearHead, fit_temperature, softmax
from .corpus import Corpus, Example
from .features import NgramFeaturizer

FORMAT_VERSION = "4"
Progress = Callable[[str, float], None]


class Encoder(Protocol):
    model_id: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


def joined_text(context: list[tuple[str, str]] | tuple, message: str, turns: int = 2) -> str:
    """The last few turns and the message as one text: what a follow-up needs to be read."""
    tail = [text for _, text in list(context)[-turns:]]
    return " ".join(tail + [message])


def draft_keys(corpus: Corpus) -> tuple[list[str], list[int]]:
    """Texts that stand for each draft in retrieval: its cues and its own text."""
    texts, owners = [], []
    for i, draft in enumerate(corpus.drafts):
        for text in [*draft.entry.cues, draft.entry.text]:
            texts.append(text)
            owners.append(i)
    return texts, owners


@dataclass
class Bundle:
    """Everything a Suggester needs besides the corpus and the encoder."""

    example_index: object  # faiss.Index over the intent examples
    key_index: object  # faiss.Index over draft cues and texts
    key_owner: np.ndarray  # key row → draft position in corpus.drafts
    draft_vecs: np.ndarray
    classifier: DialogueClassifier
    stats: dict


def flat_index(vectors: np.ndarray):
    """Exact inner-product FAISS index over normalized vectors (cosine)."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


HNSW_FROM = 20_000  # below this, exact search is already fast (measured: benchmarks/bench.py)


def build_key_index(vectors: np.ndarray):
    """Exact search for a shop-sized corpus; HNSW once many shops make it large (recall@10 ≥ 0.98)."""
    import faiss

    if len(vectors) < HNSW_FROM:
        return flat_index(vectors)
    index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    index.hnsw.efSearch = 64
    return index


# ---- training -------------------------------------------------------------------------------


def _example_rows(examples: tuple[Example, ...]) -> tuple[list[str], list[str], list[int]]:
    """Training rows: every message alone, and follow-ups once more with their context."""
    texts, labels, source = [], [], []
    for i, ex in enumerate(examples):
        texts.append(ex.text)
        labels.append(ex.intent)
        source.append(i)
        if ex.context:
            texts.append(joined_text([(t.role, t.text) for t in ex.context], ex.text))
            labels.append(ex.intent)
            source.append(i)
    return texts, labels, source


DENSE_SCALE = 2.0
HEAD_C = 20.0
CONTEXT_WEIGHT = 0.5
TARGET_ANSWERED_ACCURACY = 0.97
MIN_COVERAGE = 0.85


def train(corpus: Corpus, encoder: Encoder, progress: Progress | None = None) -> Bundle:
    report = progress or (lambda label, frac: None)
    texts, labels, source = _example_rows(corpus.examples)
    keys, owners = draft_keys(corpus)
    draft_texts = [d.entry.text for d in corpus.drafts]
    all_texts = texts + keys + draft_texts
    vecs = []
    step = 64
    for start in range(0, len(all_texts), step):
        vecs.append(encoder.encode(all_texts[start : start + step]))
        report("正在编码例句和话术", min(1.0, (start + step) / len(all_texts)) * 0.8)
    all_vecs = np.vstack(vecs).astype(np.float32)
    row_vecs = all_vecs[: len(texts)]
    key_vecs = all_vecs[len(texts) : len(texts) + len(keys)]
    draft_vecs = all_vecs[len(texts) + len(keys) :]
    example_vecs = row_vecs[[i for i, s in enumerate(source) if i == 0 or source[i - 1] != s]]

    report("正在训练意图分类器", 0.85)
    featurizer = NgramFeaturizer().fit(texts)
    sparse = featurizer.transform(texts)
    intent_head = LinearHead.fit(row_vecs, sparse, labels, DENSE_SCALE, HEAD_C)

    report("正在校准置信度", 0.9)
    oof_logits, gold = _out_of_fold(row_vecs, sparse, labels, source, intent_head.classes)
    intent_head.temperature = fit_temperature(oof_logits, gold)
    oof_p = softmax(oof_logits / intent_head.temperature)
    threshold = choose_threshold(oof_p.max(axis=1), oof_p.argmax(axis=1) == gold)

    report("正在训练买家类型分类器", 0.95)
    bargain_rows = [i for i, ex in enumerate(corpus.examples) if ex.buyer_type and ex.buyer_type != "pestering"]
    bt_texts = [corpus.examples[i].text for i in bargain_rows]
    bt_vecs = example_vecs[bargain_rows]
    type_head = LinearHead.fit(bt_vecs, featurizer.transform(bt_texts), [corpus.examples[i].buyer_type for i in bargain_rows], DENSE_SCALE, HEAD_C)

    classifier = DialogueClassifier(intent_head, type_head, featurizer, CONTEXT_WEIGHT, threshold, 0.0)
    stats = {
        "n_examples": len(corpus.examples),
        "n_drafts": len(corpus.drafts),
        "temperature": intent_head.temperature,
        "abstain_threshold": threshold,
        "oof_accuracy": float((oof_p.argmax(axis=1) == gold).mean()),
    }
    report("完成", 1.0)
    return Bundle(flat_index(example_vecs), build_key_index(key_vecs), np.array(owners, dtype=np.int64), draft_vecs, classifier, stats)


def _out_of_fold(dense, sparse, labels, source, classes, folds: int = 5):
    """Out-of-fold logits on the message-only rows, grouped so a follow-up never leaks."""
    rng = np.random.default_rng(0)
    n_groups = max(source) + 1
    fold_of = rng.integers(0, folds, size=n_groups)
    row_fold = fold_of[np.array(source)]
    first_rows = np.array([i == 0 or source[i - 1] != source[i] for i in range(len(source))])
    labels_arr = np.array(labels)
    logits = np.zeros((len(labels), len(classes)), dtype=np.float32)
    for k in range(folds):
        train_rows = row_fold != k
        head = LinearHead.fit(dense[train_rows], sparse[train_rows], list(labels_arr[train_rows]), DENSE_SCALE, HEAD_C)
        test = np.where(row_fold == k)[0]
        z = (dense[test] * head.dense_scale) @ head.dense_w.T + head.bias + (sparse[test] @ head.sparse_w.T)
        # map the fold's classes onto the full class list
        full = np.full((len(test), len(classes)), -1e4, dtype=np.float32)
        for j, c in enumerate(head.classes):
            full[:, classes.index(c)] = z[:, j]
        logits[test] = full
    keep = first_rows
    gold = np.array([classes.index(lbl) for lbl in labels_arr[keep]])
    return logits[keep], gold


def choose_threshold(confidence: np.ndarray, correct: np.ndarray) -> float:
    """The lowest confidence cut that reaches the answered-accuracy target, keeping coverage."""
    order = np.argsort(-confidence)
    conf, ok = confidence[order], correct[order].astype(float)
    running = np.cumsum(ok) / np.arange(1, len(ok) + 1)
    min_keep = int(np.ceil(MIN_COVERAGE * len(ok)))
    best = len(ok)
    for keep in range(len(ok), min_keep - 1, -1):
        if running[keep - 1] >= TARGET_ANSWERED_ACCURACY:
            best = keep
            break
    else:
        best = min_keep
    return float(conf[best - 1]) if best < len(ok) else 0.0


# ---- cache ----------------------------------------------------------------------------------


def cache_key(model_id: str, corpus: Corpus) -> str:
    h = hashlib.sha256(f"{FORMAT_VERSION}|{model_id}|{corpus.content_hash}".encode())
    return h.hexdigest()[:20]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_bundle(bundle: Bundle, folder: Path) -> None:
    """Write atomically: a temp folder, a manifest of checksums last, then one rename."""
    import faiss

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        clf = bundle.classifier
        arrays = {
            "key_owner": bundle.key_owner,
            "draft_vecs": bundle.draft_vecs,
            "idf": clf.featurizer.idf_,
            **clf.intent_head.to_arrays("intent"),
            **clf.type_head.to_arrays("type"),
        }
        np.savez(tmp / "arrays.npz", **arrays)
        faiss.write_index(bundle.example_index, str(tmp / "examples.faiss"))
        faiss.write_index(bundle.key_index, str(tmp / "keys.faiss"))
        meta = {
            "vocab": list(clf.featurizer.vocab_ or {}),
            "min_df": clf.featurizer.min_df,
            "context_weight": clf.context_weight,
            "abstain_threshold": clf.abstain_threshold,
            "min_similarity": clf.min_similarity,
            "stats": bundle.stats,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        manifest = {name: _sha(tmp / name) for name in ("arrays.npz", "examples.faiss", "keys.faiss", "meta.json")}
        (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_bundle(folder: Path) -> Bundle | None:
    """The cached bundle, or None when it is missing, truncated or corrupt."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        for name, digest in manifest.items():
            if _sha(folder / name) != digest:
                return None
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        with np.load(folder / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        featurizer = NgramFeaturizer.from_state({"vocab": meta["vocab"], "idf": arrays["idf"], "min_df": meta["min_df"]})
        classifier = DialogueClassifier(
            LinearHead.from_arrays(arrays, "intent"),
            LinearHead.from_arrays(arrays, "type"),
            featurizer,
            meta["context_weight"],
            meta["abstain_threshold"],
            meta["min_similarity"],
        )
        import faiss

        example_index = faiss.read_index(str(folder / "examples.faiss"))
        key_index = faiss.read_index(str(folder / "keys.faiss"))
        return Bundle(example_index, key_index, arrays["key_owner"], arrays["draft_vecs"], classifier, meta["stats"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError):
        return None
    except Exception as exc:  # zipfile.BadZipFile and friends from a damaged npz
        if type(exc).__name__ in {"BadZipFile", "BadZipfile", "UnpicklingError"}:
            return None
        raise


def get_bundle(corpus: Corpus, encoder: Encoder, cache_root: Path, progress: Progress | None = None) -> tuple[Bundle, bool]:
    """Load the cached bundle for this model and corpus, or build and cache it. Returns (bundle, built)."""
    folder = cache_root / "index" / cache_key(encoder.model_id, corpus)
    bundle = load_bundle(folder) if folder.exists() else None
    if bundle is not None:
        return bundle, False
    bundle = train(corpus, encoder, progress)
    save_bundle(bundle, folder)
    return bundle, True
