"""Keep eval/'s accept lists current when drafts are added or reworded.

A draft no accept list names can only push listed drafts down, so every new or reworded draft
makes hit@k look worse until someone judges it. This script gives judges what they need, blind:

    python eval/judging/judge.py packets --drafts id1,id2 --out DIR [--parts 2] [--turns e0004#4,…]
        one JSON line per eval/ turn with an accept list whose intent (and buyer type) the drafts
        belong to, and per turn named in --turns (those eval/README.md lists as having no fitting
        draft): the dialogue so far, the message, and those drafts filled with the shop's values;
        never the current lists or replybot's ranking. Judges follow INSTRUCTIONS.md and write
        DIR/out_<k>.jsonl. A turn without a list that is not named was never judged at all: one
        new draft on it would make a list of one, so it is left out.
    python eval/judging/judge.py merge DIR
        adds every draft a judge accepted to that turn's accept list in eval/dialogues.jsonl, and
        takes off a draft of the packet a judge did not accept (a reworded draft is judged anew).

eval/README.md describes how the lists were made and what a full re-judgement involves.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIALOGUES = ROOT / "eval" / "dialogues.jsonl"
# Filled into drafts where the tool takes the value from the dialogue.
DIALOGUE_VALUES = {"buyer_price": "〔买家出的价〕", "our_price": "〔现价〕", "gap": "〔差价〕", "order_total": "〔订单金额〕", "concession": "〔可给的让步〕"}


def packets(
    draft_ids: list[str], out: Path, parts: int, no_fit_turns: frozenset[str] = frozenset(),
    dialogues: Path = DIALOGUES, root: Path = ROOT,
) -> int:
    from replybot.corpus import load_corpus
    from replybot.policy import fill, shop_values

    corpus = load_corpus(root / "intents", root / "scripts_corpus", root / "shops" / "default.yml")
    by_id = corpus.drafts_by_id()
    unknown = [d for d in draft_ids if d not in by_id]
    if unknown:
        raise SystemExit(f"未知的话术编号：{', '.join(unknown)}")
    values = shop_values(corpus.shop) | DIALOGUE_VALUES
    rows = []
    for line in dialogues.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        for k, t in enumerate(d["turns"]):
            if t["role"] != "buyer" or "intent" not in t:
                continue
            if not t.get("accept") and f"{d['id']}#{k}" not in no_fit_turns:
                continue
            pool = [
                i for i in draft_ids
                if by_id[i].intent == t["intent"]
                and (t["intent"] != "bargain" or by_id[i].entry.buyer_type == t.get("buyer_type"))
            ]  # listed drafts too: a reworded draft is judged anew, and the packet does not say which are
            if not pool:
                continue
            random.Random(f"{d['id']}#{k}").shuffle(pool)
            rows.append({
                "turn": f"{d['id']}#{k}",
                "context": [f"{c['role']}: {c['text']}" for c in d["turns"][:k]],
                "message": t["text"], "intent": t["intent"], "buyer_type": t.get("buyer_type"),
                "drafts": {i: fill(by_id[i].entry.text, values) for i in pool},
            })
    out.mkdir(parents=True, exist_ok=True)
    for part in range(parts):
        with open(out / f"packet_{part}.jsonl", "w", encoding="utf-8") as f:
            for row in rows[part::parts]:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def merge(folder: Path, dialogues: Path = DIALOGUES) -> tuple[int, int]:
    """Apply the judgements: (drafts added, drafts taken off). A judgement for a turn or draft that
    is not in the packets is an error. A list left empty is dropped: no draft fits that turn."""
    pools = {}
    for path in sorted(folder.glob("packet_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            pools[row["turn"]] = set(row["drafts"])
    accepted: dict[str, list[str]] = {}
    for path in sorted(folder.glob("out_*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            row = json.loads(line)
            if row["turn"] not in pools or not set(row["accept"]) <= pools[row["turn"]]:
                raise SystemExit(f"{path}:{n}: 不在评判包里的消息或话术")
            accepted[row["turn"]] = row["accept"]
    missing = sorted(set(pools) - set(accepted))
    if missing:
        raise SystemExit(f"还有 {len(missing)} 条消息没有评判结果，例如 {missing[0]}")
    lines, added, removed = [], 0, 0
    for line in dialogues.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        for k, t in enumerate(d["turns"]):
            turn = f"{d['id']}#{k}"
            if turn not in pools:
                continue
            old = t.get("accept", [])
            kept = [i for i in old if i not in pools[turn] or i in accepted[turn]]
            new = [i for i in accepted[turn] if i not in old]
            added, removed = added + len(new), removed + len(old) - len(kept)
            if kept or new:
                t["accept"] = kept + new
            else:
                t.pop("accept", None)
        lines.append(json.dumps(d, ensure_ascii=False))
    dialogues.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return added, removed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("packets")
    p.add_argument("--drafts", required=True, help="comma-separated draft ids")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--parts", type=int, default=1)
    p.add_argument("--turns", default="", help="comma-separated turns judged to have no fitting draft")
    m = sub.add_parser("merge")
    m.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "packets":
        turns = frozenset(t.strip() for t in args.turns.split(",") if t.strip())
        n = packets([d.strip() for d in args.drafts.split(",") if d.strip()], args.out, max(1, args.parts), turns)
        print(f"{n} 条消息待评判，评判说明见 {Path(__file__).with_name('INSTRUCTIONS.md')}")
    else:
        added, removed = merge(args.folder)
        print(f"已加入 {added} 个采纳话术，撤下 {removed} 个")


if __name__ == "__main__":
    sys.exit(main())
