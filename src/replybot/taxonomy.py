"""The fixed label set of ../shared/taxonomy.md: ids and the Chinese names agents see."""

INTENTS: dict[str, str] = {
    "bargain": "议价",
    "size": "尺码",
    "colour": "色差",
    "odour": "气味",
    "shipping": "快递",
    "out_of_stock": "缺货",
    "complaint": "投诉",
    "returns": "退换",
    "quality": "质量",
    "greeting": "问候",
    "order_change": "改单",
    "payment": "付款",
    "other": "其他",
}

BUYER_TYPES: dict[str, str] = {
    "probing": "试探型",
    "promising": "允诺型",
    "comparing": "对比型",
    "assertive": "武断型",
    "ultimatum": "威逼利诱型",
    "sympathy": "博取同情型",
    "excuse": "借口型",
    "pestering": "死缠烂打型",
}

# Seed variants by price gap and order amount, per buyer type (002, 第19篇).
VARIANTS: dict[str, tuple[str, ...]] = {
    "ultimatum": ("small_gap_small_order", "small_gap_fair_order", "large_gap"),
    "excuse": ("small_gap", "large_gap"),
}

VARIANT_NAMES: dict[str, str] = {
    "small_gap_small_order": "差价小、金额小",
    "small_gap_fair_order": "差价小、金额尚可",
    "large_gap": "差价大",
    "small_gap": "差价小",
}

BARGAIN = "bargain"
OTHER = "other"
