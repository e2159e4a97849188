"""Pure functions from prediction records to metrics; intent_accuracy is the primary figure."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..taxonomy import BARGAIN, BUYER_TYPES, INTENTS


@dataclass
class Record:
    """One scored turn: what was asked, what was expected, what replybot said."""

    dialogue_id: str
    index: int
    text: str
    context: list[dict]
    gold: str
    also: list[str]
    gold_buyer_type: str | None
    accept: list[str]
    predicted: str
    confidence: float
    abstained: bool
    top_intent: str
    buyer_type: str | None
    draft_ids: list[str]
    latency_ms: float
    baselines: dict[str, dict] = field(default_factory=dict)
    alternatives: list[tuple[str, float]] = field(default_factory=list)  # the next intents replybot weighed, best first

    @property
    def correct(self) -> bool:
        return self.right(self.predicted)

    @property
    def top_correct(self) -> bool:
        """Whether the best-scoring intent is right, abstained or not (the coverage curve's view)."""
        return self.right(self.top_intent)

    @property
    def wrong_type(self) -> bool:
        """A bargaining turn read as bargaining, with the wrong buyer type."""
        return self.gold == "bargain" and bool(self.gold_buyer_type) and self.predicted == "bargain" and self.buyer_type != self.gold_buyer_type

    @property
    def accept_rank(self) -> int | None:
        """1-based rank of the first accepted draft among those retrieved; None if none was."""
        return next((k for k, d in enumerate(self.draft_ids, 1) if d in self.accept), None)

    @property
    def hit_at_3(self) -> bool:
        rank = self.accept_rank
        return rank is not None and rank <= 3

    def right(self, intent: str) -> bool:
        """Whether `intent` is right for this turn (`also` counts)."""
        return intent == self.gold or intent in self.also


def lenient_gold(gold: str, also: list[str], predicted: str) -> str:
    """The gold label a prediction is judged against: `also` counts as right."""
    return predicted if predicted in also else gold


def intent_metrics(golds: list[str], alsos: list[list[str]], preds: list[str], min_support: int = 1) -> dict:
    from sklearn.metrics import classification_report

    n = len(golds)
    effective = [lenient_gold(g, a, p) for g, a, p in zip(golds, alsos, preds)]
    present = [i for i in INTENTS if i in set(golds)]
    report = classification_report(effective, preds, labels=present, output_dict=True, zero_division=0)
    per_intent = {
        i: {k: round(float(report[i][k]), 4) for k in ("precision", "recall", "f1-score")} | {"support": int(report[i]["support"])}
        for i in present
    }
    for v in per_intent.values():
        v["f1"] = v.pop("f1-score")
    big = [i for i in present if per_intent[i]["support"] >= min_support]
    return {
        "n_turns": n,
        "intent_accuracy": round(sum(e == p for e, p in zip(effective, preds)) / n, 4) if n else 0.0,
        "intent_accuracy_strict": round(sum(g == p for g, p in zip(golds, preds)) / n, 4) if n else 0.0,
        "intent_macro_f1": round(float(np.mean([per_intent[i]["f1"] for i in present])), 4) if present else 0.0,
        f"intent_macro_f1_support_{min_support}": round(float(np.mean([per_intent[i]["f1"] for i in big])), 4) if big else 0.0,
        "per_intent": per_intent,
    }


def confusion(golds: list[str], alsos: list[list[str]], preds: list[str]) -> tuple[list[str], list[list[int]]]:
    labels = [i for i in INTENTS if i in set(golds) | set(preds)]
    pos = {label: k for k, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, a, p in zip(golds, alsos, preds):
        matrix[pos[lenient_gold(g, a, p)]][pos[p]] += 1
    return labels, matrix


def buyer_type_metrics(records: list[Record], predicted_types: list[str | None] | None = None) -> dict:
    from sklearn.metrics import f1_score

    rows = [(r, t) for r, t in zip(records, predicted_types or [r.buyer_type for r in records]) if r.gold == "bargain" and r.gold_buyer_type]
    if not rows:
        return {"buyer_type_accuracy": None, "n_bargain_turns": 0, "per_buyer_type_f1": {}}
    gold = [r.gold_buyer_type for r, _ in rows]
    pred = [t or "none" for _, t in rows]
    present = [b for b in BUYER_TYPES if b in set(gold)]
    f1s = f1_score(gold, pred, labels=present, average=None, zero_division=0)
    pest = [(g, p) for g, p in zip(gold, pred) if g == "pestering"]
    return {
        "buyer_type_accuracy": round(sum(g == p for g, p in zip(gold, pred)) / len(gold), 4),
        "n_bargain_turns": len(gold),
        "per_buyer_type_f1": {b: round(float(f), 4) for b, f in zip(present, f1s)},
        "pestering_recall": round(sum(p == "pestering" for _, p in pest) / len(pest), 4) if pest else None,
    }


def abstention_metrics(records: list[Record]) -> dict:
    n = len(records)
    answered = [r for r in records if not r.abstained]
    curve = []
    conf = np.array([r.confidence for r in records])
    ok = np.array([r.top_correct for r in records])
    for t in np.round(np.linspace(0.0, 0.95, 20), 2):
        keep = conf >= t
        if keep.sum() == 0:
            break
        curve.append({"threshold": float(t), "coverage": round(float(keep.mean()), 4), "accuracy": round(float(ok[keep].mean()), 4)})
    at_80, cut_80 = accuracy_at_coverage(conf, ok, 0.8)
    return {
        "abstain_rate": round(1 - len(answered) / n, 4) if n else 0.0,
        "answered_accuracy": round(sum(r.correct for r in answered) / len(answered), 4) if answered else None,
        "accuracy_at_80_coverage": at_80,
        "threshold_at_80_coverage": cut_80,
        "coverage_curve": curve,
    }


def confident_errors(records: list[Record], cut: float | None) -> list[dict]:
    """The wrong turns among the most confident (confidence >= the 80%-coverage cut), most
    confident first: they alone keep accuracy at 80% coverage below 100%."""
    if cut is None:
        return []
    wrong = sorted((r for r in records if not r.top_correct and r.confidence >= cut), key=lambda r: -r.confidence)
    return [
        {"turn": f"{r.dialogue_id}#{r.index}", "text": r.text, "gold": r.gold, "also": list(r.also),
         "predicted": r.top_intent, "confidence": round(r.confidence, 4)}
        for r in wrong
    ]


def accuracy_at_coverage(conf: np.ndarray, ok: np.ndarray, coverage: float) -> tuple[float | None, float | None]:
    """Accuracy on the most confident `coverage` share of turns, and the confidence cut that keeps
    them (turns tied at the cut are kept, so the share can only be larger). Exact, where the
    20-step curve above can only say what its own thresholds keep."""
    if not len(conf):
        return None, None
    k = max(1, int(np.ceil(coverage * len(conf) - 1e-9)))
    cut = float(np.sort(conf)[::-1][k - 1])
    keep = conf >= cut
    return round(float(ok[keep].mean()), 4), round(cut, 4)


def draft_metrics(records: list[Record]) -> dict:
    rows = [r for r in records if r.accept]
    if not rows:
        return {"n_accept_turns": 0, "hit_at_1": None, "hit_at_3": None, "mrr": None}
    hit1 = hit3 = rr = 0.0
    for r in rows:
        rank = r.accept_rank
        if rank is not None:
            hit1 += rank == 1
            hit3 += rank <= 3
            rr += 1 / rank
    n = len(rows)
    return {"n_accept_turns": n, "hit_at_1": round(hit1 / n, 4), "hit_at_3": round(hit3 / n, 4), "mrr": round(rr / n, 4)}


def error_breakdown(records: list[Record]) -> dict:
    """Where the misses come from: intent errors by how close the right intent came, and the
    hit@3 misses by cause (a wrong intent or buyer type fetches the wrong drafts; otherwise the
    ranking put the accepted drafts fourth or lower)."""
    wrong = [r for r in records if not r.correct]
    runner_up = sum(1 for r in wrong if r.alternatives and r.alternatives[0][0] == r.gold)
    accept = [r for r in records if r.accept]
    missed = [r for r in accept if not r.hit_at_3]
    wrong_type = [r for r in missed if r.wrong_type]
    by_intent = sum(1 for r in missed if not r.correct)
    return {
        "intent_errors": len(wrong),
        "intent_errors_gold_second": runner_up,
        "hit_at_3_misses": len(missed),
        "hit_at_3_misses_wrong_intent": by_intent,
        "hit_at_3_misses_wrong_buyer_type": len(wrong_type),
        "hit_at_3_misses_ranking": len(missed) - by_intent - len(wrong_type),
        "hit_at_3_given_right_intent": round(
            sum(1 for r in accept if r.correct and r.hit_at_3) / max(1, sum(r.correct for r in accept)), 4
        ) if accept else None,
    }


def speed_metrics(latencies_ms: list[float], wall_s: float, n_turns: int | None = None) -> dict:
    """Latency over the turns that were timed one by one (NaN = not timed); throughput of the batched run."""
    timed = [x for x in latencies_ms if x == x]
    arr = np.array(timed) if timed else np.zeros(1)
    n = len(latencies_ms) if n_turns is None else n_turns
    return {
        "latency_ms_p50": round(float(np.percentile(arr, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(arr, 95)), 2),
        "n_latency_turns": len(timed),
        "turns_per_s": round(n / wall_s, 1) if wall_s > 0 else None,
    }


def baseline_metrics(records: list[Record], name: str) -> dict:
    preds = [r.baselines[name]["intent"] for r in records]
    m = intent_metrics([r.gold for r in records], [r.also for r in records], preds)
    # A type counts only where the method also said bargain, as for replybot: an agent sees a
    # buyer type only beside a bargaining intent.
    types = [b.get("buyer_type") if b["intent"] == BARGAIN else None for b in (r.baselines[name] for r in records)]
    bt = buyer_type_metrics(records, types)
    return {
        "intent_accuracy": m["intent_accuracy"],
        "intent_macro_f1": m["intent_macro_f1"],
        "buyer_type_accuracy": bt["buyer_type_accuracy"],
    }
