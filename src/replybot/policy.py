"""Shop values for $placeholders, filled with string.Template, and the policy notes that apply."""

from __future__ import annotations

from string import Template

from .errors import MissingPolicyValue
from .schemas import NoteOut, ShopPolicy


def money(value: float) -> str:
    """99.0 → '99', 59.9 → '59.9': prices as agents write them."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def shop_values(shop: ShopPolicy) -> dict[str, str]:
    """Every $placeholder a draft or note may use, as text (documented in docs/data-formats.md)."""
    first_promo = shop.promotions[0]
    auth = shop.agent_authority
    return {
        "shop_name": shop.name,
        "service_hours": shop.service_hours,
        "free_shipping_threshold": money(shop.shipping.free_shipping_threshold),
        "excluded_regions": "、".join(shop.shipping.excluded_regions) or "无",
        "default_courier": shop.shipping.default_courier,
        "courier_on_request": shop.shipping.courier_on_request,
        "courier_surcharge": money(shop.shipping.courier_on_request_surcharge),
        "dispatch_hours": str(shop.shipping.dispatch_hours),
        "return_window_days": str(shop.returns.window_days),
        "cod_surcharge": money(shop.payment.cod_surcharge),
        "gift": shop.gifts[0].name,
        "gift_list": "、".join(g.name for g in shop.gifts),
        "promotion": first_promo.name,
        "promotion_threshold": money(first_promo.threshold),
        "promotion_discount": money(first_promo.discount),
        "max_round_off": money(auth.max_round_off),
        "coupon_amount": money(auth.coupon_amount),
        "coupon_min_order": money(auth.coupon_min_order),
        "size_tolerance_cm": shop.products.size_tolerance_cm,
        "restock_days": str(shop.products.restock_days),
        "stock_hold_hours": str(shop.products.stock_hold_hours),
    }


PLACEHOLDERS = frozenset(
    [
        "shop_name", "service_hours", "free_shipping_threshold", "excluded_regions", "default_courier",
        "courier_on_request", "courier_surcharge", "dispatch_hours", "return_window_days", "cod_surcharge",
        "gift", "gift_list", "promotion", "promotion_threshold", "promotion_discount", "max_round_off",
        "coupon_amount", "coupon_min_order", "size_tolerance_cm", "restock_days", "stock_hold_hours",
    ]
)


# Filled per dialogue from the bargaining advice; a draft using one is offered only when it is known.
DIALOGUE_PLACEHOLDERS = frozenset(["buyer_price", "our_price", "gap", "order_total", "concession"])


def template_names(text: str) -> tuple[set[str], bool]:
    """The $names a template uses, and whether it has a stray `$` that Template rejects."""
    names: set[str] = set()
    bad = False
    for match in Template.pattern.finditer(text):
        name = match.group("named") or match.group("braced")
        if name:
            names.add(name)
        elif match.group("invalid") is not None:
            bad = True
    return names, bad


def fill(text: str, values: dict[str, str]) -> str:
    """Fill $placeholders; every missing name is reported at once, never a partial draft."""
    names, _ = template_names(text)
    missing = sorted(n for n in names if n not in values)
    if missing:
        raise MissingPolicyValue(f"店铺政策缺少取值: {', '.join('$' + n for n in missing)}")
    return Template(text).substitute(values)


def notes_out(shop: ShopPolicy, note_ids: list[str] | tuple[str, ...], values: dict[str, str]) -> list[NoteOut]:
    return [NoteOut(id=n, text=fill(shop.notes[n].text, values)) for n in note_ids if n in shop.notes]


def intent_notes(shop: ShopPolicy, intent: str, values: dict[str, str]) -> list[NoteOut]:
    """All notes the shop keeps for one intent, in file order."""
    return notes_out(shop, [nid for nid, note in shop.notes.items() if note.intent == intent], values)
