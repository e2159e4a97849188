"""Suggestion → terminal text (Chinese, for agents) or JSON (for programs)."""

from __future__ import annotations

import json

from .schemas import Suggestion
from .taxonomy import VARIANT_NAMES


def to_json(suggestion: Suggestion) -> str:
    return json.dumps(suggestion.model_dump(mode="json"), ensure_ascii=False, indent=2)


def to_text(s: Suggestion) -> str:
    """Plain lines; the CLI prints them through rich only for colour."""
    lines = []
    head = f"意图: {s.intent_name}（{s.intent}）  置信度 {s.intent_confidence:.0%}"
    if s.abstained:
        head = f"意图: 不确定，按「其他」处理  最高置信度 {s.intent_confidence:.0%}"
    lines.append(head)
    if s.buyer_type_name:
        lines.append(f"买家类型: {s.buyer_type_name}（{s.buyer_type}）  置信度 {s.buyer_type_confidence:.0%}")
    if s.alternatives:
        alts = " · ".join(f"{a.name} {a.confidence:.0%}" for a in s.alternatives if a.confidence >= 0.01)
        if alts:
            lines.append(f"其他可能: {alts}")
    if s.context_used:
        lines.append("（已结合前文判断）")
    if s.bargaining:
        lines += bargaining_lines(s.bargaining)
    lines.append("")
    lines.append("建议回复:")
    if not s.drafts:
        lines.append("  （没有合适的话术）")
    for n, d in enumerate(s.drafts, 1):
        variant = f"，{VARIANT_NAMES[d.variant]}" if d.variant in VARIANT_NAMES else ""
        lines.append(f"  {n}. {d.text}")
        lines.append(f"     [{d.id}{variant}  匹配度 {d.score:.2f}]")
    notes = {n.id: n.text for n in s.policy_notes}
    for d in s.drafts:
        for n in d.notes:
            notes.setdefault(n.id, n.text)
    if notes:
        lines.append("")
        lines.append("政策提示:")
        for text in notes.values():
            lines.append(f"  • {text}")
    return "\n".join(lines)


def bargaining_lines(b) -> list[str]:
    from .policy import money

    lines = [f"议价: 第 {b.round} 轮" + (f"，客服已拒绝 {b.refusals} 次" if b.refusals else "")]
    facts = []
    if b.order_total is not None:
        facts.append(f"订单 ¥{money(b.order_total)}" + (f"（{b.quantity} 件）" if b.quantity > 1 else ""))
    if b.buyer_total is not None:
        facts.append(f"买家出价 ¥{money(b.buyer_total)}")
    if b.gap is not None:
        facts.append(f"差价 ¥{money(b.gap)}（{b.gap_percent:g}%）")
    if b.variant in VARIANT_NAMES:
        facts.append(VARIANT_NAMES[b.variant])
    if facts:
        lines.append("      " + "，".join(facts))
    cost = f"（店铺成本约 ¥{money(b.concession.cost)}）" if b.concession.cost else ""
    lines.append(f"建议让步: {b.concession.description}{cost}")
    if b.escalate:
        lines.append(f"⚠ 请示主管: {b.escalate_reason}")
    return lines
