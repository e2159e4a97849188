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

from replybot.classify import LinearHead, neighbour_vote, softmax  # noqa: E402
from replybot.config import Settings  # noqa: E402
from replybot.evaluation.dataset import load_dialogues  # noqa: E402
from replybot.features import NgramFeaturizer  # noqa: E402
from replybot.index import (  # noqa: E402
    CONTEXT_WEIGHT,
    NEIGHBOURS,
    VOTE_TEMPERATURE,
    VOTE_WEIGHT,
    _example_rows,
    balanced_weights,
    compose_vectors,
    context_tail,
    joined_text,
    neighbour_rows,
)
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

    def composed(parts_list):
        return np.stack([enc(p)[0] if len(p) == 1 else compose_vectors(enc(p), p) for p in parts_list])

    texts, parts, labels, source = _example_rows(corpus.examples)
    X = composed(parts)
    featurizer = NgramFeaturizer().fit(texts)
    S = featurizer.transform(texts)
    weights = balanced_weights(labels)
    first = np.array([i == 0 or source[i - 1] != source[i] for i in range(len(source))])
    ex_vecs, ex_labels = X[first], np.array(labels)[first]
    nb_texts, nb_all_labels = neighbour_rows(corpus)
    nb_all_vecs = enc(nb_texts)

    heads = {
        "tf-idf n-grams + LR": (LinearHead.fit(X[:, :0], S, labels, 1.0, 20.0, weights), False, True),
        "embeddings + LR": (LinearHead.fit(X, S[:, :0], labels, 2.0, 20.0, weights), True, False),
        "hybrid": (LinearHead.fit(X, S, labels, 2.0, 20.0, weights), True, True),
        "hybrid, unweighted": (LinearHead.fit(X, S, labels, 2.0, 20.0), True, True),
        "hybrid, C=5": (LinearHead.fit(X, S, labels, 2.0, 5.0, weights), True, True),
        "hybrid, dense x4": (LinearHead.fit(X, S, labels, 4.0, 20.0, weights), True, True),
    }
    for path in args.files:
        turns = load_dialogues([path])
        msgs = [t.text for t in turns]
        pairs = [[(c.role, c.text) for c in t.context] for t in turns]
        joined = [joined_text(p, m) if p else m for p, m in zip(pairs, msgs)]
        gold = [t.intent for t in turns]
        also = [list(t.also) for t in turns]
        M = enc(msgs)
        J = composed([context_tail(p) + [m] for p, m in zip(pairs, msgs)])
        Sm, Sj = featurizer.transform(msgs), featurizer.transform(joined)
        has_ctx = np.array([bool(p) for p in pairs])
        print(f"\n== {path} ({len(turns)} turns, {has_ctx.sum()} with context): accuracy / macro-F1 (support >= 5)")
        sims = M @ ex_vecs.T
        nn = ex_labels[sims.argmax(axis=1)]
        print(f"{'1-NN on embeddings':28s} {accuracy(nn, gold, also):.3f} / {macro_f1(nn, gold, also):.3f}")
        top = np.argsort(-sims, axis=1)[:, :7]
        knn = []
        for row, idx in enumerate(top):
            votes = Counter()
            for j in idx:
                votes[ex_labels[j]] += float(sims[row, j])
            knn.append(votes.most_common(1)[0][0])
        print(f"{'7-NN weighted vote':28s} {accuracy(knn, gold, also):.3f} / {macro_f1(knn, gold, also):.3f}")
        def mix(pm: np.ndarray, pj: np.ndarray, w: float) -> np.ndarray:
            """Message probabilities, mixed with the message-in-context ones where there is context."""
            p = pm.copy()
            p[has_ctx] = (1 - w) * pm[has_ctx] + w * pj[has_ctx]
            return p

        shipped_head = None
        for name, (head, dense_on, sparse_on) in heads.items():
            def proba(V, SS):
                dense = V if dense_on else V[:, :0]
                SS = SS if sparse_on else SS[:, :0]
                z = (dense * head.dense_scale) @ head.dense_w.T + head.bias + np.asarray(SS @ head.sparse_w.T)
                return softmax(z)

            pm, pj = proba(M, Sm), proba(J, Sj)
            if name == "hybrid":
                shipped_head = mix(pm, pj, CONTEXT_WEIGHT)
            cells = []
            for w in (0.0, 0.2, 0.3, 0.4, 0.5):
                pred = [head.classes[i] for i in mix(pm, pj, w).argmax(axis=1)]
                cells.append(f"ctx {w}: {accuracy(pred, gold, also):.3f} / {macro_f1(pred, gold, also):.3f}")
            print(f"{name:28s} " + "   ".join(cells))

        # shipped: the hybrid at the shipped context weight, with the nearest neighbours voting
        # beside it: the intent examples, and (shipped) the drafts' cues as well
        classes = heads["hybrid"][0].classes

        def votes(V: np.ndarray, nb_vecs: np.ndarray, nb_intents: np.ndarray) -> np.ndarray:
            sims_v = V @ nb_vecs.T
            top_v = np.argsort(-sims_v, axis=1)[:, :NEIGHBOURS]
            return np.stack([
                neighbour_vote(sims_v[row, idx], idx, nb_intents, len(classes), VOTE_TEMPERATURE)
                for row, idx in enumerate(top_v)
            ])

        for label, (nb_vecs, nb_labels) in {
            "+ example neighbours": (ex_vecs, ex_labels),
            "+ example & cue neighbours": (nb_all_vecs, nb_all_labels),
        }.items():
            nb_intents = np.array([classes.index(lbl) for lbl in nb_labels])
            p_vote = mix(votes(M, nb_vecs, nb_intents), votes(J, nb_vecs, nb_intents), CONTEXT_WEIGHT)
            cells = []
            for a in (0.0, 0.2, 0.3, 0.4, 0.5):
                pred = [classes[i] for i in ((1 - a) * shipped_head + a * p_vote).argmax(axis=1)]
                cells.append(f"vote {a}: {accuracy(pred, gold, also):.3f} / {macro_f1(pred, gold, also):.3f}")
            print(f"{'hybrid ctx 0.4 ' + label:42s} " + "   ".join(cells))
        print(f"(shipped: example & cue neighbours, vote {VOTE_WEIGHT})")


if __name__ == "__main__":
    main()
