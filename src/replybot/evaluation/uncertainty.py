"""How far a figure could move with other dialogues: 95% intervals by resampling whole dialogues.

Turns of one dialogue are not independent (one misread opening drags its follow-ups along), so
a per-turn binomial interval would be too narrow; resampling dialogues with replacement keeps
each dialogue's turns together. The same resamples give the interval of replybot's lift over
each baseline, paired turn by turn: a lift whose interval stays above zero is not luck.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .metrics import Record, accuracy_at_coverage

RESAMPLES = 1000
LEVEL = 0.95
SEED = 0

TurnScore = Callable[[list[Record]], float | None]


def _intent_ok(records: Sequence[Record]) -> np.ndarray:
    return np.array([r.correct for r in records], dtype=float)


def _hit_at(k: int) -> TurnScore:
    def score(records: list[Record]) -> float | None:
        rows = [r for r in records if r.accept]
        if not rows:
            return None
        return float(np.mean([any(d in r.accept for d in r.draft_ids[:k]) for r in rows]))

    return score


def _buyer_type(records: list[Record]) -> float | None:
    rows = [r for r in records if r.gold == "bargain" and r.gold_buyer_type]
    return float(np.mean([r.buyer_type == r.gold_buyer_type for r in rows])) if rows else None


def _at_80(records: list[Record]) -> float | None:
    conf = np.array([r.confidence for r in records])
    ok = np.array([r.top_intent == r.gold or r.top_intent in r.also for r in records])
    return accuracy_at_coverage(conf, ok, 0.8)[0]


FIGURES: dict[str, TurnScore] = {
    "intent_accuracy": lambda rs: float(_intent_ok(rs).mean()) if rs else None,
    "intent_accuracy_strict": lambda rs: float(np.mean([r.predicted == r.gold for r in rs])) if rs else None,
    "buyer_type_accuracy": _buyer_type,
    "accuracy_at_80_coverage": _at_80,
    "hit_at_1": _hit_at(1),
    "hit_at_3": _hit_at(3),
}


def dialogue_resamples(records: Sequence[Record], resamples: int = RESAMPLES, seed: int = SEED) -> list[list[Record]]:
    """`resamples` sets of records, each drawn dialogue by dialogue with replacement."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(r.dialogue_id, []).append(r)
    dialogues = list(groups.values())
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(dialogues), size=(resamples, len(dialogues)))
    return [[r for i in row for r in dialogues[i]] for row in picks]


def _interval(values: list[float]) -> list[float] | None:
    if not values:
        return None
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return [round(float(lo), 4), round(float(hi), 4)]


def intervals(records: Sequence[Record], baseline_names: Sequence[str] = (), resamples: int = RESAMPLES) -> dict:
    """95% intervals of the headline figures, and of the intent-accuracy lift over each baseline."""
    if not records:
        return {"figures": {}, "lift": {}}
    samples = dialogue_resamples(records, resamples)
    figures = {}
    for name, score in FIGURES.items():
        values = [v for v in (score(s) for s in samples) if v is not None]
        figures[name] = _interval(values)
    lift = {}
    for name in baseline_names:
        diffs = []
        for s in samples:
            ours = _intent_ok(s)
            theirs = np.array([r.baselines[name]["intent"] == r.gold or r.baselines[name]["intent"] in r.also for r in s], dtype=float)
            diffs.append(float((ours - theirs).mean()))
        lift[name] = _interval(diffs)
    return {"level": LEVEL, "resamples": resamples, "unit": "dialogue", "figures": figures, "lift": lift}
