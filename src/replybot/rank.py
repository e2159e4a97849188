"""Retrieve the drafts of the predicted intent and buyer type, ranked by fit and diversified."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classify import softmax
from .corpus import Corpus
from .index import Bundle

# Weight of the draft head's probability beside the best cue's cosine. Chosen on held-out cues
# (5-fold over scripts_corpus/, 2026-12-02), not on eval/: hit@3 0.905 without the head, 0.923
# at 0.1, 0.924 at 0.2 and 0.4, 0.922 at 1, 0.919 with the head alone.
DRAFT_HEAD_WEIGHT = 0.4


@dataclass
class RankedDraft:
    position: int  # index into corpus.drafts
    score: float


def candidate_drafts(
    corpus: Corpus, intent: str, buyer_type: str | None, variant: str | None = None, known: frozenset[str] | None = None
) -> list[int]:
    """Drafts of the intent; for bargaining, of the buyer type (and variant, when known).

    `known` holds the dialogue values found (the buyer's price, the gap) and the facts the buyer
    has already given (facts.stated_facts). A draft that quotes a dialogue value, or takes a fact
    as said (`requires`), is offered only when it is known, so an agent never sees a hole in a
    draft or answers what was not asked; a draft that asks for facts is left out once the buyer
    has given them all (unless nothing else is left).
    """
    from .policy import DIALOGUE_PLACEHOLDERS, template_names

    known = known or frozenset()
    chosen, answered = [], []
    for i, d in enumerate(corpus.drafts):
        if d.intent != intent:
            continue
        needs = template_names(d.entry.text)[0] & DIALOGUE_PLACEHOLDERS
        if needs <= known and set(d.entry.requires) <= known:
            (answered if d.entry.asks_for and set(d.entry.asks_for) <= known else chosen).append(i)
    chosen = chosen or answered
    if buyer_type is not None:
        typed = [i for i in chosen if corpus.drafts[i].entry.buyer_type == buyer_type]
        chosen = typed or chosen
        if variant is not None:
            fitting = [i for i in chosen if corpus.drafts[i].entry.variant in (variant, None)]
            chosen = fitting or chosen
    return chosen


def relevance(bundle: Bundle, query_vec: np.ndarray, candidates: list[int]) -> dict[int, float]:
    """How well each candidate draft answers the message, in [-1, 1]: the best cosine between
    the message and any key (cue or text) of the draft, blended with the draft head's
    probability among the candidates."""
    import faiss

    key_rows = np.where(np.isin(bundle.key_owner, np.array(candidates, dtype=np.int64)))[0].astype(np.int64)
    if not len(key_rows):
        return {}
    params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(key_rows))
    sims, ids = bundle.key_index.search(query_vec[None, :].astype(np.float32), len(key_rows), params=params)
    best: dict[int, float] = {}
    for sim, key in zip(sims[0], ids[0]):
        if key < 0:
            continue
        owner = int(bundle.key_owner[key])
        best[owner] = max(best.get(owner, -1.0), float(sim))
    if bundle.draft_head is None:
        return best
    scored = [c for c in candidates if c in best]
    z = bundle.draft_head.logits(query_vec[None, :], [])[0]
    p = softmax(z[np.array(scored, dtype=np.int64)])
    return {c: (best[c] + DRAFT_HEAD_WEIGHT * float(pc)) / (1 + DRAFT_HEAD_WEIGHT) for c, pc in zip(scored, p)}


def diversify(corpus: Corpus, scores: dict[int, float], k: int, demoted: frozenset[int] = frozenset()) -> list[RankedDraft]:
    """The best-fitting drafts with one draft per tactic (move) while moves last: three drafts are
    three different things to say. (A penalty for resembling drafts already picked, maximal
    marginal relevance, measured worse: hit@3 on eval/ with the gold intent 0.807 at weight 0.3,
    0.869 without.) `demoted` drafts come after all others, whatever their scores."""
    picked: list[int] = []
    pool = dict(scores)
    while pool and len(picked) < k:
        used_moves = {corpus.drafts[p].entry.move for p in picked}
        best = max(
            pool,
            key=lambda i: pool[i] - (corpus.drafts[i].entry.move in used_moves) - 4.0 * (i in demoted),
        )
        picked.append(best)
        del pool[best]
    return [RankedDraft(p, scores[p]) for p in picked]


def rank_drafts(
    corpus: Corpus,
    bundle: Bundle,
    query_vec: np.ndarray,
    intent: str,
    buyer_type: str | None,
    k: int,
    variant: str | None = None,
    known: frozenset[str] | None = None,
) -> list[RankedDraft]:
    candidates = candidate_drafts(corpus, intent, buyer_type, variant, known)
    # With the gap unknown, a draft that calls it small or large would claim what nobody said:
    # those come only after the drafts that make no such claim.
    guesses_gap = frozenset(i for i in candidates if corpus.drafts[i].entry.variant) if variant is None else frozenset()
    return diversify(corpus, relevance(bundle, query_vec, candidates), k, demoted=guesses_gap)
