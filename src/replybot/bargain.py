"""Bargaining advice bound to the shop's policy: round, amounts, gap, the seed's variant, a concession.

The concession ladder is the policy's, in this order: a gift, rounding off, free shipping, a
coupon, a discount. An agent's offer never goes below the floor price nor past the agent's
authority; anything more is for the supervisor (请示主管), with the reason.
"""

from __future__ import annotations

import math
from typing import Sequence

from .amounts import extract_amounts
from .classify import refused_after_each_buyer_turn, refused_moves
from .policy import money
from .schemas import Amounts, BargainAdvice, Concession, ShopPolicy, Turn


def bargaining_round(context: Sequence[Turn], is_bargain: Sequence[bool]) -> tuple[int, int]:
    """(this message's bargaining move number, agent replies that turned a move down).
    is_bargain covers the latest buyer turns only (the classifier reads a bounded history)."""
    refused = refused_after_each_buyer_turn([(t.role, t.text) for t in context], len(is_bargain))
    return sum(is_bargain) + 1, refused_moves(is_bargain, refused)


def list_price_from_catalog(shop: ShopPolicy, texts: Sequence[str]) -> float | None:
    """An item of the shop's catalogue named in the dialogue (by name or alias), latest mention
    first; the longest name wins within one text (碎花雪纺连衣裙 over 连衣裙)."""
    for text in reversed(texts):
        found = [(len(n), item.price) for item in shop.catalog for n in [item.name, *item.aliases] if n and n in text]
        if found:
            return max(found)[1]
    return None


def merge_amounts(latest: Amounts, earlier: Sequence[Amounts]) -> Amounts:
    """The latest message wins; a quantity said before still counts (两件 … 那150行吗)."""
    merged = latest.model_copy()
    if merged.quantity is None:
        for a in reversed(earlier):
            if a.quantity is not None:
                merged.quantity = a.quantity
                break
    return merged


def buyer_total(a: Amounts, list_total: float | None, qty: int) -> float | None:
    """What the buyer would pay: an offer, else a budget, else our total less the asked discount.
    A "price" equal to our own list price is the buyer quoting it (阔腿裤89 我卡上只有70)."""
    if a.offer_total is not None:
        return a.offer_total
    quoting_ours = list_total is not None and a.offer_price is not None and abs(a.offer_price * qty - list_total) < 0.01
    if a.offer_price is not None and not quoting_ours:
        return a.offer_price * qty
    if a.budget is not None:
        return a.budget
    if list_total is None:
        return None
    if a.discount_amount is not None:
        return list_total - a.discount_amount
    if a.discount_rate is not None:
        return list_total * a.discount_rate
    return None


def choose_variant(buyer_type: str | None, gap: float | None, gap_pct: float | None, order_total: float | None, shop: ShopPolicy, agent_limit: float) -> str | None:
    """The seed's variant (002 第19篇) from the bands in the shop policy."""
    if gap is None or gap_pct is None or order_total is None:
        return None
    bands = shop.bargaining
    small = gap <= bands.small_gap_amount or gap_pct <= bands.small_gap_percent
    if buyer_type == "ultimatum":
        if not small:
            return "large_gap"
        return "small_gap_fair_order" if order_total >= bands.fair_order_amount else "small_gap_small_order"
    if buyer_type == "excuse":
        return "small_gap" if small else "large_gap"  # past the agent's authority, concede() escalates
    return None


def advise(
    shop: ShopPolicy,
    buyer_type: str | None,
    message: str,
    context: Sequence[Turn],
    is_bargain: Sequence[bool],
    price: float | None = None,
    qty: int | None = None,
    order_total: float | None = None,
) -> BargainAdvice:
    auth = shop.agent_authority
    buyer_texts = [t.text for t in context if t.role == "buyer"]
    moves, refusals = bargaining_round(context, is_bargain)
    amounts = merge_amounts(extract_amounts(message), [extract_amounts(t) for t in buyer_texts])
    quantity = qty or amounts.quantity or 1
    unit = price if price is not None else list_price_from_catalog(shop, [t.text for t in context] + [message])
    total = order_total if order_total is not None else (unit * quantity if unit is not None else None)
    offered = amounts.budget if amounts.budget is not None else amounts.offer_price
    if total is None and offered is not None and amounts.discount_amount:  # 余额97 差两块: ours is 99
        total = offered + amounts.discount_amount
    target = buyer_total(amounts, total, quantity)
    gap = gap_pct = floor_total = agent_limit = None
    if total is not None:
        # to the cent, on the shop's side: the floor rounds up, the agent's limit down
        floor_total = math.ceil(round(total * auth.floor_price_percent, 6)) / 100
        agent_limit = max(0.0, math.floor(round(min(total * auth.max_discount_percent, 100 * (total - floor_total)), 6)) / 100)
    if total is not None and target is not None:
        gap = round(max(0.0, total - target), 2)
        gap_pct = round(100 * gap / total, 1) if total else 0.0
    variant = choose_variant(buyer_type, gap, gap_pct, total, shop, agent_limit or 0.0)
    concession, escalate, reason = concede(shop, buyer_type, variant, gap, total, agent_limit, floor_total, target)
    return BargainAdvice(
        round=moves, refusals=refusals, amounts=amounts, list_price=unit, quantity=quantity, order_total=total,
        buyer_total=target, gap=gap, gap_percent=gap_pct, variant=variant, floor_total=floor_total,
        agent_limit=agent_limit, concession=concession, escalate=escalate, escalate_reason=reason,
    )


def _gift(shop: ShopPolicy, budget: float | None) -> Concession:
    """The cheapest gift, or for a fair order the dearest gift the gap still covers."""
    gifts = sorted(shop.gifts, key=lambda g: g.cost)
    pick = gifts[0]
    if budget is not None:
        fitting = [g for g in gifts if g.cost <= budget]
        pick = fitting[-1] if fitting else gifts[0]
    return Concession(kind="gift", description=f"送{pick.name}", cost=pick.cost)


def concede(
    shop: ShopPolicy,
    buyer_type: str | None,
    variant: str | None,
    gap: float | None,
    total: float | None,
    agent_limit: float | None,
    floor_total: float | None,
    target: float | None,
) -> tuple[Concession, bool, str | None]:
    """The smallest step of the policy's ladder that answers this buyer, and whether to escalate."""
    auth = shop.agent_authority
    escalate, reason = False, None
    if total is not None and total >= auth.supervisor_order_threshold:
        escalate, reason = True, f"订单金额 ¥{money(total)} 达到主管审批线 ¥{money(auth.supervisor_order_threshold)}，让价需请示主管"
    if gap is not None and gap <= 0:
        return Concession(kind="none", description="买家出价不低于售价，直接确认下单即可"), escalate, reason
    if buyer_type == "pestering":  # seed 002 第19篇: see them off politely; giving more only invites the next round
        return Concession(kind="hold_price", description="已拒绝多次：不再追加让步，客气道谢收尾"), escalate, reason
    if gap is not None and agent_limit is not None and gap > agent_limit and buyer_type in ("ultimatum", "excuse"):
        below = target is not None and floor_total is not None and target < floor_total
        why = f"买家要价比售价低 ¥{money(gap)}，超出客服可让的 ¥{money(agent_limit)}" + ("，且低于底价" if below else "")
        escalate, reason = True, reason or f"{why}：如要成交请示主管"
    if variant == "large_gap" and buyer_type == "excuse":
        return Concession(kind="pay_later", description="差价大：不让价，建议找亲友代付或稍后再付，可先帮买家留货"), escalate, reason
    if variant == "large_gap":
        promo = shop.promotions[0]
        return Concession(kind="hold_price", description=f"差价大：守住价格，引导参加「{promo.name}」"), escalate, reason
    if variant == "small_gap_small_order":
        return _gift(shop, None), escalate, reason
    if variant == "small_gap_fair_order":
        return _gift(shop, gap), escalate, reason
    if variant == "small_gap" and gap is not None and agent_limit is not None:
        amount = min(gap, agent_limit)
        kind = "round_off" if amount <= auth.max_round_off else "discount"
        label = "抹零" if kind == "round_off" else "让价"
        return Concession(kind=kind, description=f"{label} ¥{money(amount)}（在客服权限内）", amount=amount, cost=amount), escalate, reason
    # No numbers, or a type without variants: the seed's three steps, so first the value, then the smallest gift.
    if gap is not None and agent_limit is not None and gap <= min(auth.max_round_off, agent_limit):
        return Concession(kind="round_off", description=f"抹零 ¥{money(gap)}（在客服权限内）", amount=gap, cost=gap), escalate, reason
    if total is not None and auth.free_shipping_min_order <= total < shop.shipping.free_shipping_threshold:
        cost = shop.bargaining.postage_cost
        return Concession(kind="free_shipping", description=f"订单满 ¥{money(auth.free_shipping_min_order)}，可以包邮", cost=cost), escalate, reason
    if total is not None and total >= auth.coupon_min_order and agent_limit is not None and auth.coupon_amount <= agent_limit:
        return Concession(kind="coupon", description=f"发一张 ¥{money(auth.coupon_amount)} 店铺券（满 ¥{money(auth.coupon_min_order)} 可用）", amount=auth.coupon_amount, cost=auth.coupon_amount), escalate, reason
    return _gift(shop, None), escalate, reason
