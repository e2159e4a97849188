"""eval/judging/judge.py: blind packets for new drafts, and merging what the judges accepted."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _judge_module():
    spec = importlib.util.spec_from_file_location("judge", ROOT / "eval" / "judging" / "judge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dialogues(path: Path) -> Path:
    rows = [
        {"id": "t1", "turns": [
            {"role": "buyer", "text": "没发货我取消了 钱什么时候回来", "intent": "returns", "accept": ["returns-refund-timing"]},
            {"role": "agent", "text": "亲，稍等我看看"},
            {"role": "buyer", "text": "退到哪里啊", "intent": "returns"},  # never judged: left out
        ]},
        {"id": "t2", "turns": [{"role": "buyer", "text": "花呗能分期吗", "intent": "payment"}]},  # judged: no fit
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_packets_are_blind_and_merge_adds_what_judges_accepted(tmp_path):
    judge = _judge_module()
    dialogues = _dialogues(tmp_path / "d.jsonl")
    out = tmp_path / "packets"
    drafts = ["returns-cancel-refund", "payment-huabei-instalment"]
    n = judge.packets(drafts, out, 1, frozenset({"t2#0"}), dialogues=dialogues)
    rows = [json.loads(line) for line in (out / "packet_0.jsonl").read_text(encoding="utf-8").splitlines()]
    assert n == 2 and [r["turn"] for r in rows] == ["t1#0", "t2#0"]
    assert set(rows[0]["drafts"]) == {"returns-cancel-refund"} and "accept" not in json.dumps(rows)
    assert "$" not in json.dumps(rows, ensure_ascii=False)  # filled with the shop's values

    (out / "out_0.jsonl").write_text(
        '{"turn": "t1#0", "accept": ["returns-cancel-refund"]}\n{"turn": "t2#0", "accept": ["payment-huabei-instalment"]}\n'
    )
    assert judge.merge(out, dialogues=dialogues) == (2, 0)
    merged = [json.loads(line) for line in dialogues.read_text(encoding="utf-8").splitlines()]
    assert merged[0]["turns"][0]["accept"] == ["returns-refund-timing", "returns-cancel-refund"]
    assert "accept" not in merged[0]["turns"][2]
    assert merged[1]["turns"][0]["accept"] == ["payment-huabei-instalment"]


def test_a_reworded_draft_the_judges_reject_leaves_the_list(tmp_path):
    judge = _judge_module()
    dialogues = _dialogues(tmp_path / "d.jsonl")
    judge.packets(["returns-refund-timing"], tmp_path, 1, dialogues=dialogues)
    (tmp_path / "out_0.jsonl").write_text('{"turn": "t1#0", "accept": []}\n')
    assert judge.merge(tmp_path, dialogues=dialogues) == (0, 1)
    merged = [json.loads(line) for line in dialogues.read_text(encoding="utf-8").splitlines()]
    assert "accept" not in merged[0]["turns"][0]  # nothing left that fits: no list


def test_merge_refuses_judgements_outside_the_packets(tmp_path):
    judge = _judge_module()
    dialogues = _dialogues(tmp_path / "d.jsonl")
    before = dialogues.read_text(encoding="utf-8")
    judge.packets(["returns-cancel-refund"], tmp_path, 1, dialogues=dialogues)
    (tmp_path / "out_0.jsonl").write_text('{"turn": "t1#0", "accept": ["returns-how-to"]}\n')
    with pytest.raises(SystemExit, match="不在评判包里"):
        judge.merge(tmp_path, dialogues=dialogues)
    assert dialogues.read_text(encoding="utf-8") == before
