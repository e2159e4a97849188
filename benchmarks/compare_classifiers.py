"""Compare intent/buyer-type classifiers on the labelled sets, with vectors encoded once.

Usage: python benchmarks/compare_classifiers.py eval/dialogues.jsonl ../shared/realdev.jsonl

Trains every candidate on intents/ only and scores each file's labelled buyer turns with the
earlier turns as context. This is how the method in classify.py was chosen (README, "How it
was chosen"); the numbers it prints are the ones quoted there.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from replybot.classify import LinearHead, softmax  # noqa: E402
from replybot.config import Settings  # noqa: E402
from replybot.evaluation.dataset import load_dialogues  # noqa: E402
from replybot.features import NgramFeaturizer  # noqa: E402
from replybot.index import _example_rows, joined_text  # noqa: E402
from replybot.suggest import Suggester  # noqa: E402


class VectorCache:
    """Encode each distinct text once; keep the vectors on disk between runs of this script."""

    def __init__(self, encoder, path: Path):
        self.encoder, self.path = encoder, path
        self.vecs: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                self.vecs = dict(zip(z["texts"].tolist(), z["vecs"]))

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self.vecs})
        for start in range(0, len(missing), 64):
            chunk = missing[start : start + 64]
            for t, v in zip(chunk, self.encoder.encode(chunk)):
                self.vecs[t] = v
        if missing:
            np.savez(self.path, texts=np.array(list(self.vecs)), vecs=np.stack(list(self.vecs.values())))
        return np.stack([self.vecs[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def accuracy(pred, gold, also) -> float:
    return float(np.mean([p == g or p in a for p, g, a in zip(pred, gold, also)]))


def macro_f1(pred, gold, also, min_support=5) -> float:
    eff = [p if p in a else g for p, g, a in zip(pred, gold, also)]
    support = Counter(eff)
    f1s = []
    for c, n in support.items():
        if n < min_support:
            continue
        tp = sum(1 for p, e in zip(pred, eff) if p == e == c)
        fp = sum(1 for p, e in zip(pred, eff) if p == c != e)
        fn = n - tp
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(f1s))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/replybot-compare-vecs.npz"))
    args = ap.parse_args()

    suggester = Suggester(Settings())
    corpus = suggester.corpus
    enc = VectorCache(suggester.encoder, args.cache)

    texts, labels, source = _example_rows(corpus.examples)
    X = enc(texts)
    featurizer = NgramFeaturizer().fit(texts)
    S = featurizer.transform(texts)
    first = np.array([i == 0 or source[i - 1] != source[i] for i in range(len(source))])

    heads = {}
    for name, scale, C, sparse_on in [
        ("tfidf-lr", 0.0, 20.0, True),
        ("dense-lr", 2.0, 20.0, False),
        ("hybrid s2 C20", 2.0, 20.0, True),
        ("hybrid s4 C20", 4.0, 20.0, True),
        ("hybrid s2 C5", 2.0, 5.0, True),
        ("hybrid s3 C50", 3.0, 50.0, True),
    ]:
        S_use = S if sparse_on else S[:, :0]
        dense = X if scale else X[:, :0]
        heads[name] = (LinearHead.fit(dense, S_use, labels, max(scale, 1.0), C), scale, sparse_on)

    ex_vecs, ex_labels = X[first], np.array(labels)[first]

    for path in args.files:
        turns = load_dialogues([path])
        msgs = [t.text for t in turns]
        pairs = [[(c.role, c.text) for c in t.context] for t in turns]
        joined = [joined_text(p, m) if p else m for p, m in zip(pairs, msgs)]
        gold = [t.intent for t in turns]
        also = [list(t.also) for t in turns]
        M, J = enc(msgs), enc(joined)
        Sm, Sj = featurizer.transform(msgs), featurizer.transform(joined)
        has_ctx = np.array([bool(p) for p in pairs])
        print(f"\n== {path} ({len(turns)} turns, {has_ctx.sum()} with context)")
        sims = M @ ex_vecs.T
        nn = ex_labels[sims.argmax(axis=1)]
        print(f"{'1-NN on embeddings':34s} acc {accuracy(nn, gold, also):.3f}  F1 {macro_f1(nn, gold, also):.3f}")
        for name, (head, scale, sparse_on) in heads.items():
            def proba(V, SS):
                dense = V if scale else V[:, :0]
                SS = SS if sparse_on else SS[:, :0]
                z = (dense * head.dense_scale) @ head.dense_w.T + head.bias + np.asarray(SS @ head.sparse_w.T)
                return softmax(z)
            pm, pj = proba(M, Sm), proba(J, Sj)
            for w in (0.0, 0.3, 0.5):
                for gate in (None, 0.9, 0.7):
                    p = pm.copy()
                    use = has_ctx if gate is None else has_ctx & (pm.max(axis=1) < gate)
                    p[use] = (1 - w) * pm[use] + w * pj[use]
                    pred = [head.classes[i] for i in p.argmax(axis=1)]
                    tag = f"{name} ctx{w} gate{gate}"
                    print(f"{tag:34s} acc {accuracy(pred, gold, also):.3f}  F1 {macro_f1(pred, gold, also):.3f}")
                    if w == 0.0:
                        break


if __name__ == "__main__":
    main()
