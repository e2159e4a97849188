"""How far a figure could move with other dialogues: 95% intervals by resampling whole dialogues.

Turns of one dialogue are not independent (one misread opening drags its follow-ups along), so
a per-turn binomial interval would be too narrow; resampling dialogues with replacement keeps
each dialogue's turns together. The same resamples give the interval of replybot's lift over
each baseline, paired turn by turn: a lift whose interval stays above zero is not luck.

Each turn is judged once (the Record properties); a resample is a weight per turn (how often its
dialogue was drawn), so every figure is a weighted mean and 1,000 resamples cost milliseconds.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .metrics import Record, accuracy_at_coverage

RESAMPLES = 1000
LEVEL = 0.95
SEED = 0


def dialogue_weights(records: Sequence[Record], resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, turns): how many times each turn's dialogue was drawn in each resample."""
    dialogue_of: dict[str, int] = {}
    turn_dialogue = np.array([dialogue_of.setdefault(r.dialogue_id, len(dialogue_of)) for r in records])
    n = len(dialogue_of)
    picks = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    counts = np.zeros((resamples, n), dtype=np.int64)
    np.add.at(counts, (np.arange(resamples)[:, None], picks), 1)
    return counts[:, turn_dialogue]


def _interval(values: np.ndarray) -> list[float] | None:
    values = values[~np.isnan(values)]
    if not len(values):
        return None
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return [round(float(lo), 4), round(float(hi), 4)]


def _weighted_share(weights: np.ndarray, hit: np.ndarray, counted: np.ndarray | None = None) -> np.ndarray:
    """Per resample: the share of counted turns that hit (NaN where none is counted)."""
    w = weights if counted is None else weights * counted
    total = w.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (w @ hit.astype(float)) / total, np.nan)


def intervals(records: Sequence[Record], baseline_names: Sequence[str] = (), resamples: int = RESAMPLES) -> dict:
    """95% intervals of the headline figures, and of the intent-accuracy lift over each baseline."""
    if not records:
        return {"figures": {}, "lift": {}}
    weights = dialogue_weights(records, resamples)
    correct = np.array([r.correct for r in records])
    bargain = np.array([r.gold == "bargain" and bool(r.gold_buyer_type) for r in records])
    accepted = np.array([bool(r.accept) for r in records])
    conf = np.array([r.confidence for r in records])
    top_ok = np.array([r.top_correct for r in records])
    turns = np.arange(len(records))
    at_80 = np.array([accuracy_at_coverage(conf[idx], top_ok[idx], 0.8)[0] for idx in (np.repeat(turns, w) for w in weights)])
    figures = {
        "intent_accuracy": _weighted_share(weights, correct),
        "intent_accuracy_strict": _weighted_share(weights, np.array([r.predicted == r.gold for r in records])),
        "buyer_type_accuracy": _weighted_share(weights, np.array([r.buyer_type == r.gold_buyer_type for r in records]), bargain),
        "accuracy_at_80_coverage": at_80,
        "hit_at_1": _weighted_share(weights, np.array([r.accept_rank == 1 for r in records]), accepted),
        "hit_at_3": _weighted_share(weights, np.array([r.hit_at_3 for r in records]), accepted),
    }
    lift = {}
    for name in baseline_names:
        theirs = np.array([r.right(r.baselines[name]["intent"]) for r in records])
        lift[name] = _interval(_weighted_share(weights, correct.astype(float) - theirs))
    return {
        "level": LEVEL,
        "resamples": resamples,
        "unit": "dialogue",
        "figures": {name: _interval(values) for name, values in figures.items()},
        "lift": lift,
    }
