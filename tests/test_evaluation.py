"""`replybot eval` from data file to report: what it reads, what it refuses, what it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replybot.cli import app
from replybot.errors import DatasetError
from replybot.evaluation.dataset import load_dialogues
from replybot.evaluation.report import markdown, write_report
from replybot.evaluation.runner import evaluate
from replybot.suggest import Suggester

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()

# The keys issue 3 names for --json, and those of each per-intent row and each baseline.
SUMMARY_KEYS = {
    "n_turns", "intent_accuracy", "intent_accuracy_strict", "intent_macro_f1", "per_intent", "buyer_type_accuracy",
    "n_bargain_turns", "abstain_rate", "answered_accuracy", "hit_at_1", "hit_at_3", "mrr", "latency_ms_p50",
    "latency_ms_p95", "turns_per_s", "baselines",
}
BASELINES = {"keyword_rules", "tfidf_logreg", "nearest_neighbour"}


def dialogue(dialogue_id: str, *turns: dict) -> str:
    return json.dumps({"id": dialogue_id, "turns": list(turns)}, ensure_ascii=False)


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def small_set(tmp_path) -> Path:
    """Six dialogues in the mini corpus's words, with context, a bargaining run and accept ids."""
    return write_lines(
        tmp_path / "small.jsonl",
        dialogue("a", {"role": "buyer", "text": "什么时候发货", "intent": "shipping", "accept": ["shipping-a"]},
                 {"role": "agent", "text": "亲，48小时内发"},
                 {"role": "buyer", "text": "好的", "intent": "other"}),
        dialogue("b", {"role": "buyer", "text": "能便宜点吗", "intent": "bargain", "buyer_type": "probing"},
                 {"role": "agent", "text": "亲，已经是最低价了"},
                 {"role": "buyer", "text": "别家才卖50", "intent": "bargain", "buyer_type": "comparing"}),
        dialogue("c", {"role": "buyer", "text": "我165穿什么码", "intent": "size", "accept": ["size-a", "size-b"]}),
        dialogue("d", {"role": "buyer", "text": "我要投诉", "intent": "complaint", "also": ["shipping"]}),
        dialogue("e", {"role": "buyer", "text": "能退吗", "intent": "returns"}),
        dialogue("f", {"role": "buyer", "text": "在吗", "intent": "greeting"}, {"role": "agent", "text": "在的亲"}),
    )


def test_summary_has_every_figure_the_issue_names(mini_settings, fake_encoder, small_set):
    summary, records = evaluate([small_set], Suggester(mini_settings, encoder=fake_encoder))
    assert SUMMARY_KEYS <= set(summary)
    assert summary["n_turns"] == len(records) == 8  # labelled buyer turns only
    assert summary["n_bargain_turns"] == 2
    for row in summary["per_intent"].values():
        assert set(row) == {"precision", "recall", "f1", "support"}
    assert set(summary["baselines"]) == BASELINES
    for b in summary["baselines"].values():
        assert set(b) == {"intent_accuracy", "intent_macro_f1", "buyer_type_accuracy"}
    assert set(summary["lift"]) == BASELINES
    assert set(summary["intervals"]["lift"]) == BASELINES
    assert 0.0 <= summary["intent_accuracy"] <= 1.0 and summary["hit_at_3"] is not None
    # each turn was read with every turn before it
    follow_up = next(r for r in records if r.dialogue_id == "a" and r.index == 2)
    assert [c["text"] for c in follow_up.context] == ["什么时候发货", "亲，48小时内发"]


def test_report_folder_holds_the_four_files(mini_settings, fake_encoder, small_set, tmp_path):
    summary, records = evaluate([small_set], Suggester(mini_settings, encoder=fake_encoder))
    folder = tmp_path / "report"
    write_report(folder, summary, records)
    assert json.loads((folder / "report.json").read_text(encoding="utf-8"))["n_turns"] == 8
    errors = json.loads((folder / "errors.json").read_text(encoding="utf-8"))
    wrong_type = lambda r: r.correct and r.gold == "bargain" and r.buyer_type != r.gold_buyer_type  # noqa: E731
    draft_miss = lambda r: bool(r.accept) and not any(d in r.accept for d in r.draft_ids[:3])  # noqa: E731
    assert len(errors) == sum(not r.correct or wrong_type(r) or draft_miss(r) for r in records)
    for e in errors:
        assert {"text", "context", "gold", "predicted", "confidence", "error", "gold_rank", "accept_rank"} <= set(e)
    assert (folder / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (folder / "report.md").read_text(encoding="utf-8")
    assert md == markdown(summary) and "## Baselines" in md and "95% interval" in md
    cut = summary["threshold_at_80_coverage"]
    assert summary["confident_errors"] == [e for e in summary["confident_errors"] if e["confidence"] >= cut]
    assert len(summary["confident_errors"]) == sum(not r.top_correct and r.confidence >= cut for r in records)
    assert ("Wrong among the most confident 80%" in md) == bool(summary["confident_errors"])
    summary["confident_errors"] = [{"turn": "a#0", "text": "什么|时候\n发货", "gold": "shipping", "also": [], "predicted": "payment", "confidence": 0.9}]
    assert "| a#0 | 什么｜时候 发货 | shipping | payment | 0.9 |" in markdown(summary)


def test_errors_list_every_wrong_turn_with_what_was_said(mini_settings, fake_encoder, small_set, tmp_path):
    from replybot.evaluation.report import errors_of

    _, records = evaluate([small_set], Suggester(mini_settings, encoder=fake_encoder), with_baselines=False)
    first_turn = next(r for r in records if r.dialogue_id == "a" and r.index == 0)
    first_turn.predicted, first_turn.alternatives = "payment", [("shipping", 0.3), ("other", 0.1)]  # force one wrong turn
    size_turn = next(r for r in records if r.dialogue_id == "c")
    size_turn.predicted, size_turn.draft_ids = "size", ["size-c", "size-d", "size-x", "size-b", "size-a"]  # accepted drafts 4th and 5th
    wrong = {(e["dialogue_id"], e["index"]): e for e in errors_of(records)}
    first = wrong[("a", 0)]
    assert (first["text"], first["gold"], first["predicted"], first["error"]) == ("什么时候发货", "shipping", "payment", "intent")
    assert (first["gold_rank"], first["gold_confidence"]) == (2, 0.3)
    assert first["alternatives"][0] == {"intent": "shipping", "confidence": 0.3}
    assert (wrong[("c", 0)]["error"], wrong[("c", 0)]["accept_rank"]) == ("draft", 4)


def test_a_bad_file_gives_one_line_per_problem_and_nothing_is_scored(tmp_path):
    bad = write_lines(
        tmp_path / "bad.jsonl",
        dialogue("x1", {"role": "buyer", "text": "什么时候发货", "intent": "shipping"}),
        "{not json",
        dialogue("x3", {"role": "buyer", "text": "能便宜点吗", "intent": "bargain"}),
        dialogue("x4", {"role": "buyer", "text": "在吗", "intent": "hello"}),
        dialogue("x5", {"role": "buyer", "text": "能退吗", "intent": "returns", "accept": ["no-such-draft"]}),
        dialogue("x1", {"role": "buyer", "text": "好的", "intent": "other"}),
    )
    with pytest.raises(DatasetError) as caught:
        load_dialogues([bad], {"shipping-a"})
    problems = caught.value.problems
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4", "5", "6"]
    assert all(p.startswith(f"{bad}:") for p in problems)
    assert "不是有效的 JSON" in problems[0]
    assert "议价消息缺少买家类型" in problems[1]
    assert "未知的话术编号" in problems[3] and "no-such-draft" in problems[3]
    assert "重复" in problems[4]


def test_cli_refuses_a_bad_file_before_loading_the_model(tmp_path):
    bad = write_lines(tmp_path / "bad.jsonl", "{not json", dialogue("y", {"role": "agent", "text": "亲"}))
    result = runner.invoke(app, ["eval", str(bad), "--json"])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines == [f"错误: {bad}:1: 不是有效的 JSON（Expecting property name enclosed in double quotes）"]
    empty = write_lines(tmp_path / "empty.jsonl", dialogue("z", {"role": "buyer", "text": "在吗"}))
    result = runner.invoke(app, ["eval", str(empty)])
    assert (result.exit_code, result.output) == (2, f"错误: {empty}: 没有任何带标注的买家消息\n")
    assert not (tmp_path / "cache" / "model").exists()  # nothing was scored, no model was prepared


def test_cli_eval_on_real_model_json_and_report(use_real_cache, tmp_path):
    """End to end: twenty dialogues of eval/ through the real model, index and baselines."""
    lines = (REPO / "eval" / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    subset = write_lines(tmp_path / "subset.jsonl", *lines)
    folder = tmp_path / "report"
    result = runner.invoke(app, ["eval", str(subset), "--json", "--report", str(folder)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert SUMMARY_KEYS <= set(summary)
    assert summary["n_turns"] >= 50
    assert summary["intent_accuracy"] >= 0.8  # 93.5% on the whole set
    for name, b in summary["baselines"].items():
        assert summary["intent_accuracy"] >= b["intent_accuracy"], name
    lo, hi = summary["intervals"]["figures"]["intent_accuracy"]
    assert lo <= summary["intent_accuracy"] <= hi
    for name in ("report.json", "errors.json", "report.md", "confusion.png"):
        assert (folder / name).stat().st_size > 0


def test_changes_list_what_broke_and_what_was_fixed():
    from replybot.evaluation.compare import changes

    def err(d, i, kind, **more):
        return {"dialogue_id": d, "index": i, "error": kind, "text": "t", "gold": "size", "predicted": "other", "accept_rank": None, **more}

    old = ({"files": ["a.jsonl"], "intent_accuracy": 0.9, "hit_at_3": 0.8}, [err("d1", 0, "intent"), err("d2", 2, "draft")])
    new_summary = {"files": ["a.jsonl"], "intent_accuracy": 0.95, "hit_at_3": 0.8}
    out = changes(old, new_summary, [err("d2", 2, "draft"), err("d3", 1, "buyer_type")])
    assert out["same_files"] and out["draft_misses_compared"]
    assert out["figures"]["intent_accuracy"] == {"before": 0.9, "after": 0.95, "change": 0.05}
    assert [(e["dialogue_id"], e["error"]) for e in out["newly_wrong"]] == [("d3", "buyer_type")]
    assert [(e["dialogue_id"], e["error"]) for e in out["newly_right"]] == [("d1", "intent")]
    # an older report (no accept_rank anywhere) had no draft misses: they are not counted as new
    legacy = ({"files": ["b.jsonl"]}, [{"dialogue_id": "d1", "index": 0, "error": "intent", "text": "t", "gold": "size", "predicted": "other"}])
    out = changes(legacy, {"files": ["a.jsonl"]}, [err("d1", 0, "intent"), err("d2", 2, "draft")])
    assert not out["same_files"] and not out["draft_misses_compared"]
    assert out["newly_wrong"] == [] and out["newly_right"] == []


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: None, "report.json: 找不到（--against 需要之前用 --report 写出的目录）"),
        (lambda d: (d / "report.json").write_text("{", encoding="utf-8"), "report.json: 不是有效的 JSON"),
    ],
)
def test_against_a_folder_that_is_no_report_is_one_line_before_scoring(tmp_path, small_set, make, message):
    folder = tmp_path / "old"
    folder.mkdir()
    make(folder)
    result = runner.invoke(app, ["eval", str(small_set), "--against", str(folder)])
    assert (result.exit_code, result.output) == (2, f"错误: {folder}/{message}\n")
    assert not (tmp_path / "cache" / "model").exists()


def test_cli_against_the_same_run_changes_nothing(use_real_cache, tmp_path):
    lines = (REPO / "eval" / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()[:8]
    subset = write_lines(tmp_path / "subset.jsonl", *lines)
    first = runner.invoke(app, ["eval", str(subset), "--no-baselines", "--report", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["eval", str(subset), "--no-baselines", "--json", "--against", str(tmp_path / "a")])
    assert again.exit_code == 0, again.output
    out = json.loads(again.stdout)["changes"]
    assert out["same_files"] and out["newly_wrong"] == [] and out["newly_right"] == []
    assert all(f["change"] == 0 for f in out["figures"].values())
    shown = runner.invoke(app, ["eval", str(subset), "--no-baselines", "--against", str(tmp_path / "a")])
    assert "与上次报告相比" in shown.output and "新错 0 条" in shown.output
