"""Write a small valid corpus (every intent, every buyer type) that tests can break on purpose."""

from __future__ import annotations

from pathlib import Path

import yaml

from replybot.taxonomy import BUYER_TYPES, INTENTS, VARIANTS

EXAMPLES = {
    "size": ["我165穿什么码", "130斤穿多大", "偏大还是偏小", "有尺码表吗", "平时穿M这款呢"],
    "colour": ["有色差吗", "实物和图片一样吗", "收到颜色不一样", "掉色严重", "颜色会不会很暗"],
    "odour": ["有味道吗", "一股怪味", "刺鼻的味道", "有甲醛味吗", "闻着好臭"],
    "shipping": ["什么时候发货", "发什么快递", "几天能到", "物流不动了", "包邮吗"],
    "out_of_stock": ["还有货吗", "什么时候补货", "41码没货了吗", "这个颜色还会上吗", "断货了吗"],
    "complaint": ["我要投诉", "给你差评", "客服态度太差", "骗人", "你们给个说法"],
    "returns": ["能退吗", "七天无理由吗", "换个码", "退款什么时候到", "降价了能补差价吗"],
    "quality": ["质量怎么样", "是正品吗", "开线了", "用了两天就坏了", "面料是什么"],
    "greeting": ["在吗", "你好", "亲在不在", "有人吗", "客服在吗"],
    "order_change": ["改下地址", "备注一下", "拍错了帮我取消", "电话写错了", "换个收货人"],
    "payment": ["货到付款吗", "改好价了吗", "付不了款", "能用花呗吗", "怎么付款"],
    "other": ["好的", "谢谢", "发票怎么开", "优惠券怎么用", "嗯嗯"],
}
BARGAIN = {
    "probing": ["能便宜点吗", "给点优惠吧", "有优惠吗"],
    "promising": ["第一次来便宜点下次还来", "我介绍朋友来买", "买两件能便宜吗"],
    "comparing": ["别家才卖50", "人家比你便宜", "比实体店还贵"],
    "assertive": ["太贵了", "价格贵了点", "这么贵啊"],
    "ultimatum": ["60卖不卖卖我就拍", "就这个价不行我走了", "80一袋吧"],
    "sympathy": ["我还是学生", "刚工作没钱", "掌柜可怜可怜我"],
    "excuse": ["支付宝只有这么多", "余额就剩50了", "卡里只有100"],
    "pestering": ["再便宜一点嘛", "就少五块", "你就让一点"],
}


def write_corpus(root: Path) -> Path:
    (root / "intents").mkdir(parents=True)
    (root / "scripts_corpus").mkdir()
    (root / "shops").mkdir()
    for intent, name in INTENTS.items():
        if intent == "bargain":
            examples = [{"text": t, "buyer_type": b} for b, ts in BARGAIN.items() for t in ts]
        else:
            examples = list(EXAMPLES[intent])
        data = {"id": intent, "name": name, "description": f"{name}相关", "examples": examples}
        (root / "intents" / f"{intent}.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        drafts = []
        if intent == "bargain":
            for b in BUYER_TYPES:
                variants = VARIANTS.get(b, (None,))
                for v in variants:
                    for move in ("value", "gift"):
                        d = {"id": f"bargain-{b}-{v or 'x'}-{move}".replace("_", "-"), "buyer_type": b, "move": move,
                             "text": f"亲，{b}{move}，满$promotion_threshold减$promotion_discount哦", "notes": ["bargain-steps"],
                             "cues": [BARGAIN[b][0]], "source": "002 第19篇"}
                        if v:
                            d["variant"] = v
                        drafts.append(d)
        else:
            for k, move in enumerate(("a", "b", "c", "d")):
                drafts.append({"id": f"{intent}-{move}", "move": move, "text": f"亲，关于{name}的第{k}种回复，$shop_name为您服务",
                               "notes": [f"{intent}-rule"], "cues": [EXAMPLES[intent][k]], "source": "003 网店客服工作语录"})
        (root / "scripts_corpus" / f"{intent}.yml").write_text(
            yaml.safe_dump({"intent": intent, "drafts": drafts}, allow_unicode=True), encoding="utf-8"
        )
    notes = {f"{i}-rule": {"intent": i, "text": f"{n}：按店铺规定处理"} for i, n in INTENTS.items() if i != "bargain"}
    notes["bargain-steps"] = {"intent": "bargain", "text": "先讲价值，再送$gift，让价前请示主管"}
    shop = {
        "name": "测试小店",
        "service_hours": "9:00-23:00",
        "shipping": {"free_shipping_threshold": 99, "excluded_regions": ["新疆", "西藏"], "default_courier": "中通",
                     "courier_on_request": "顺丰", "courier_on_request_surcharge": 12, "dispatch_hours": 48},
        "returns": {"window_days": 7, "buyer_pays_postage": "无理由", "shop_pays_postage": "质量问题"},
        "payment": {"cash_on_delivery": True, "cod_surcharge": 10},
        "products": {"size_tolerance_cm": "1-3", "restock_days": 7},
        "gifts": [{"name": "发圈", "cost": 2}, {"name": "袜子", "cost": 6}],
        "agent_authority": {"max_round_off": 5, "max_discount_percent": 5, "free_shipping_min_order": 79,
                            "coupon_amount": 10, "coupon_min_order": 199, "supervisor_order_threshold": 1000,
                            "floor_price_percent": 90},
        "bargaining": {"small_gap_percent": 8, "small_gap_amount": 10, "fair_order_amount": 150, "postage_cost": 8},
        "promotions": [{"name": "满199减20", "threshold": 199, "discount": 20}],
        "notes": notes,
    }
    (root / "shops" / "default.yml").write_text(yaml.safe_dump(shop, allow_unicode=True), encoding="utf-8")
    return root
