"""Evaluation metrics on hand-made records: what counts as right for replybot and the baselines."""

from replybot.evaluation.metrics import Record, baseline_metrics, buyer_type_metrics, intent_metrics


def record(gold: str, predicted: str, gold_type: str | None = None, buyer_type: str | None = None, also=(), baseline=None) -> Record:
    return Record(
        dialogue_id="d", index=0, text="x", context=[], gold=gold, also=list(also), gold_buyer_type=gold_type,
        accept=[], predicted=predicted, confidence=0.9, abstained=False, top_intent=predicted,
        buyer_type=buyer_type, draft_ids=[], latency_ms=1.0, baselines={"b": baseline} if baseline else {},
    )


def test_intent_accuracy_counts_also_but_strict_does_not():
    m = intent_metrics(["returns", "shipping"], [["size"], []], ["size", "shipping"])
    assert m["intent_accuracy"] == 1.0
    assert m["intent_accuracy_strict"] == 0.5


def test_buyer_type_needs_the_bargain_intent_for_baselines_as_for_replybot():
    records = [
        # the baseline guessed the right type but called the turn shipping: an agent would see no type
        record("bargain", "bargain", "probing", "probing", baseline={"intent": "shipping", "buyer_type": "probing"}),
        record("bargain", "bargain", "comparing", "comparing", baseline={"intent": "bargain", "buyer_type": "comparing"}),
    ]
    assert baseline_metrics(records, "b")["buyer_type_accuracy"] == 0.5
    assert buyer_type_metrics(records)["buyer_type_accuracy"] == 1.0


def test_replybot_without_a_type_is_wrong_on_a_bargain_turn():
    records = [record("bargain", "other", "excuse", None), record("shipping", "shipping")]
    m = buyer_type_metrics(records)
    assert m["n_bargain_turns"] == 1 and m["buyer_type_accuracy"] == 0.0


def test_accuracy_at_coverage_keeps_the_most_confident_share_and_ties():
    import numpy as np

    from replybot.evaluation.metrics import accuracy_at_coverage

    conf = np.array([0.99, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    ok = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=bool)
    assert accuracy_at_coverage(conf, ok, 0.8) == (1.0, 0.3)
    tied = np.array([0.9] * 9 + [0.1])  # nine tied at the top: all nine are kept
    assert accuracy_at_coverage(tied, ok, 0.8) == (round(8 / 9, 4), 0.9)
    assert accuracy_at_coverage(np.array([]), np.array([], dtype=bool), 0.8) == (None, None)


def _dialogue(dialogue_id: str, right: int, wrong: int, baseline_right: bool) -> list[Record]:
    out = []
    for k in range(right + wrong):
        r = record("shipping", "shipping" if k < right else "size", baseline={"intent": "shipping" if baseline_right else "size"})
        r.dialogue_id, r.index = dialogue_id, k
        out.append(r)
    return out


def test_intervals_resample_whole_dialogues_and_bracket_the_figure():
    from replybot.evaluation.uncertainty import intervals

    # 30 dialogues of 4 turns, each dialogue all right or all wrong: 80% right
    records = [r for i in range(30) for r in _dialogue(f"d{i}", 4 if i < 24 else 0, 0 if i < 24 else 4, baseline_right=False)]
    out = intervals(records, ["b"])
    lo, hi = out["figures"]["intent_accuracy"]
    assert lo < 0.8 < hi
    # turns of one dialogue move together: wider than a binomial interval over 120 independent turns (~±0.072)
    assert hi - lo > 0.2
    assert out["lift"]["b"][0] > 0  # the baseline is wrong everywhere: the lift is never luck
    assert out["figures"]["hit_at_3"] is None  # no accept ids, no interval
    assert intervals(records, ["b"]) == out  # the same resamples every run


def test_intervals_are_a_point_when_every_dialogue_agrees():
    from replybot.evaluation.uncertainty import intervals

    records = [r for i in range(10) for r in _dialogue(f"d{i}", 3, 0, baseline_right=True)]
    out = intervals(records, ["b"])
    assert out["figures"]["intent_accuracy"] == [1.0, 1.0]
    assert out["lift"]["b"] == [0.0, 0.0]


def test_error_breakdown_splits_the_hit_at_3_misses_by_cause():
    from replybot.evaluation.metrics import error_breakdown

    rows = [
        record("shipping", "size"),  # wrong intent, accept below
        record("shipping", "shipping"),  # right intent, accepted draft 4th: ranking
        record("bargain", "bargain", "probing", "comparing"),  # wrong type
        record("size", "size"),  # hit
    ]
    for r, ids in zip(rows, (["size-a"], ["s-b", "s-c", "s-d", "s-a"], ["b-x"], ["z-a", "z-b"])):
        r.accept, r.draft_ids = [ids[-1] if r.gold != "bargain" else "b-y"], ids
    rows[0].accept = ["s-a"]
    rows[0].alternatives = [("shipping", 0.2)]
    b = error_breakdown(rows)
    assert (b["intent_errors"], b["intent_errors_gold_second"]) == (1, 1)
    assert (b["hit_at_3_misses"], b["hit_at_3_misses_wrong_intent"], b["hit_at_3_misses_wrong_buyer_type"], b["hit_at_3_misses_ranking"]) == (3, 1, 1, 1)
    assert b["hit_at_3_given_right_intent"] == round(1 / 3, 4)


def test_confident_errors_are_the_wrong_turns_at_or_above_the_cut():
    from replybot.evaluation.metrics import confident_errors

    rows = [record("shipping", "size"), record("returns", "bargain"), record("size", "size"), record("other", "payment")]
    for r, c in zip(rows, (0.9, 0.5, 0.95, 0.3)):
        r.confidence = c
    listed = confident_errors(rows, 0.5)
    assert [(e["gold"], e["predicted"], e["confidence"]) for e in listed] == [("shipping", "size", 0.9), ("returns", "bargain", 0.5)]
    assert confident_errors(rows, None) == []
