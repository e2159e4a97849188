"""Bargaining advice: numerals, variants by gap band, the policy-bound ladder, and its safety."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replybot.amounts import chinese_number, extract_amounts
from replybot.bargain import advise
from replybot.classify import agent_refuses, refused_after_each_buyer_turn
from replybot.corpus import load_shop
from replybot.schemas import CatalogItem, ShopPolicy, Turn


@pytest.fixture
def shop(mini_root) -> ShopPolicy:
    return load_shop(mini_root / "shops" / "default.yml", None, mini_root)[0]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("60卖不卖", {"offer_price": 60}),
        ("80一袋吧", {"offer_price": 80}),
        ("少10块", {"discount_amount": 10}),
        ("打个九折", {"discount_rate": 0.9}),
        ("八五折行不", {"discount_rate": 0.85}),
        ("两件150", {"quantity": 2, "offer_total": 150}),
        ("支付宝只有120", {"budget": 120}),
        ("五包就便宜了4块钱", {"quantity": 5, "discount_amount": 4}),
        ("一百二", {"offer_price": 120}),
        ("三十五块五", {"offer_price": 35.5}),
        ("三件两百五包邮吧", {"quantity": 3, "offer_total": 250}),
        ("我穿41码 100块卖吗", {"offer_price": 100}),
        ("¥59.9 行不行", {"offer_price": 59.9}),
        ("能便宜一点吗", {}),
    ],
)
def test_extract_amounts(text, expected):
    got = extract_amounts(text).model_dump(exclude_defaults=True)
    got.pop("prices", None)
    assert got == expected


def test_several_prices_in_one_message():
    a = extract_amounts("别家卖89 你这卖99 79行不行")
    assert a.prices == [89, 99, 79]


@pytest.mark.parametrize("text,value", [("一百二", 120), ("两百五", 250), ("三十五", 35), ("十", 10), ("一千二", 1200), ("二十", 20), ("一万", 10000)])
def test_chinese_numbers(text, value):
    assert chinese_number(text) == value


# price 100, qty 1 → order 100 (< fair 150); price 100, qty 2 → order 200 (≥ fair)
@pytest.mark.parametrize(
    "buyer_type,message,qty,variant,kind",
    [
        ("ultimatum", "95卖不卖 卖我就拍", 1, "small_gap_small_order", "gift"),
        ("ultimatum", "两件190 行就拍", 2, "small_gap_fair_order", "gift"),
        ("ultimatum", "60卖不卖", 1, "large_gap", "hold_price"),
        ("excuse", "支付宝只有96", 1, "small_gap", "round_off"),
        ("excuse", "余额就剩50了", 1, "large_gap", "pay_later"),
    ],
)
def test_variant_by_gap_and_amount(shop, buyer_type, message, qty, variant, kind):
    a = advise(shop, buyer_type, message, [], [], price=100, qty=qty)
    assert a.variant == variant
    assert a.concession.kind == kind


@pytest.mark.parametrize("buyer_type", ["probing", "promising", "comparing", "assertive", "sympathy", "pestering"])
@pytest.mark.parametrize("message,gap", [("97行吗", 3), ("60行吗", 40), ("能便宜点吗", None), ("9折吧", 10)])
def test_every_type_by_every_band(shop, buyer_type, message, gap):
    a = advise(shop, buyer_type, message, [], [], price=100)
    assert a.gap == gap
    assert a.variant is None  # only ultimatum and excuse have seed variants
    assert a.concession.amount <= (a.agent_limit or 0) + 1e-9
    if buyer_type == "pestering":  # refused again and again: no further concession at any gap
        assert a.concession.kind == "hold_price" and a.concession.amount == 0 and not a.escalate
    elif gap == 3:
        assert a.concession.kind == "round_off" and a.concession.amount == 3


def test_large_order_goes_to_the_supervisor(shop):
    a = advise(shop, "probing", "能便宜点吗", [], [], price=600, qty=2)
    assert a.escalate and "主管审批线" in a.escalate_reason


def test_gap_beyond_authority_escalates_with_reason(shop):
    a = advise(shop, "ultimatum", "60卖不卖", [], [], price=100)
    assert a.escalate and "超出客服可让的 ¥5" in a.escalate_reason and "低于底价" in a.escalate_reason


def test_catalogue_gives_the_list_price(shop):
    shop = shop.model_copy(update={"catalog": [CatalogItem(name="羊毛大衣", price=399)]})
    a = advise(shop, "ultimatum", "350卖不卖", [Turn(role="buyer", text="这件羊毛大衣还有吗")], [False])
    assert a.list_price == 399 and a.gap == 49


def test_catalogue_alias_named_by_the_agent_gives_the_price(shop):
    catalog = [CatalogItem(name="双排扣风衣", price=259, aliases=["风衣"]), CatalogItem(name="针织开衫", price=99, aliases=["开衫"])]
    shop = shop.model_copy(update={"catalog": catalog})
    context = [Turn(role="buyer", text="那件衣服能便宜吗"), Turn(role="agent", text="亲，这款风衣已经是活动价了")]
    a = advise(shop, "excuse", "我卡里只有200", context, [True])
    assert a.list_price == 259 and a.gap == 59 and a.variant == "large_gap"


def test_changed_policy_changes_advice_without_code(shop):
    before = advise(shop, "excuse", "支付宝只有85", [], [], price=100)
    assert before.variant == "large_gap" and before.concession.kind == "pay_later"
    wider = shop.model_copy(update={"bargaining": shop.bargaining.model_copy(update={"small_gap_amount": 15}),
                                    "agent_authority": shop.agent_authority.model_copy(update={"max_discount_percent": 15, "max_round_off": 15, "floor_price_percent": 80})})
    after = advise(wider, "excuse", "支付宝只有85", [], [], price=100)
    assert after.variant == "small_gap" and after.concession.amount == 15 and not after.escalate


def test_five_turn_pestering_run_counts_rounds_and_refusals(shop):
    ctx = [
        Turn(role="buyer", text="能便宜点吗"), Turn(role="agent", text="亲，已经是最低价了"),
        Turn(role="buyer", text="少五块嘛"), Turn(role="agent", text="实在抱歉呢"),
        Turn(role="buyer", text="那送个小礼物"), Turn(role="agent", text="亲，礼物已经送完了，不好意思"),
        Turn(role="buyer", text="包邮总行吧"), Turn(role="agent", text="真的没办法了亲"),
    ]
    a = advise(shop, "pestering", "再便宜一点点嘛", ctx, [True, True, True, True])
    assert a.round == 5 and a.refusals == 4


policies = st.fixed_dictionaries(
    {
        "max_round_off": st.floats(0, 50),
        "max_discount_percent": st.floats(0, 30),
        "floor_price_percent": st.floats(50, 100),
        "coupon_amount": st.floats(0, 100),
        "coupon_min_order": st.floats(0, 500),
        "free_shipping_min_order": st.floats(0, 300),
        "supervisor_order_threshold": st.floats(1, 5000),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    policy=policies,
    price=st.floats(1, 3000),
    qty=st.integers(1, 20),
    offer=st.floats(0.5, 6000),
    buyer_type=st.sampled_from(["probing", "promising", "comparing", "assertive", "ultimatum", "sympathy", "excuse", "pestering"]),
    form=st.sampled_from(["{o:.0f}卖不卖", "支付宝只有{o:.0f}", "少{o:.0f}块", "能便宜点吗", "打个九折"]),
)
def test_advice_never_below_floor_nor_past_authority(mini_root, policy, price, qty, offer, buyer_type, form):
    shop = load_shop(mini_root / "shops" / "default.yml", None, mini_root)[0]
    shop = shop.model_copy(update={"agent_authority": shop.agent_authority.model_copy(update=policy)})
    a = advise(shop, buyer_type, form.format(o=offer), [], [], price=price, qty=qty)
    total = price * qty
    assert a.concession.amount >= 0
    assert a.concession.amount <= total * policy["max_discount_percent"] / 100 + 1e-6
    assert total - a.concession.amount >= total * policy["floor_price_percent"] / 100 - 1e-6
    if total >= policy["supervisor_order_threshold"]:
        assert a.escalate


@pytest.mark.parametrize(
    "reply, refuses",
    [
        ("亲，已经是最低价了", True),
        ("亲，价格改不了，送您一个发圈", True),  # a gift instead of the price asked for
        ("亲，满158就包邮啦，您现在还差30哦", True),  # a counter-offer, no explicit no
        ("亲，这款是羊毛混纺的，和普通腈纶的不一样", True),  # defending the price
        ("亲，可以给您包邮哦", False),
        ("好的亲，给您改成120了", False),
        ("行吧，就按85给您", False),
    ],
)
def test_agent_reply_refuses_unless_it_gives_what_was_asked(reply, refuses):
    assert agent_refuses(reply) is refuses


def test_refusals_count_only_replies_to_bargaining_moves(shop):
    ctx = [
        Turn(role="buyer", text="M码有货吗"), Turn(role="agent", text="亲，M码暂时没有了"),
        Turn(role="buyer", text="便宜点吧"), Turn(role="agent", text="亲，这款是新款，质量很好的"),
        Turn(role="buyer", text="少十块"), Turn(role="agent", text="好的亲，给您改成119了"),
    ]
    a = advise(shop, "probing", "那再包个邮", ctx, [False, True, True])
    assert a.round == 3 and a.refusals == 1


def test_refused_after_each_buyer_turn_reads_the_replies_between_buyer_turns():
    pairs = [("buyer", "便宜点"), ("agent", "亲，满199减20哦"), ("buyer", "少五块"), ("agent", "可以的亲，给您改")]
    assert refused_after_each_buyer_turn(pairs) == [True, False]
    assert refused_after_each_buyer_turn([("agent", "您好"), ("buyer", "在吗")]) == [False]


@pytest.mark.parametrize(
    "text, budget, discount",
    [("微信零钱就56块 t恤能卖我不", 56, None), ("余额97 差两块", 97, 2), ("我就带了120块预算", 120, None),
     ("卡上只有70", 70, None), ("零钱不够", None, None)],
)
def test_budget_words_and_gaps(text, budget, discount):
    a = extract_amounts(text)
    assert a.budget == budget and a.discount_amount == discount and a.offer_price is None


def test_buyer_quoting_our_price_is_not_an_offer(shop):
    a = advise(shop, "excuse", "阔腿裤89 我卡上只有70", [], [], price=89)
    assert a.order_total == 89 and a.buyer_total == 70 and a.gap == 19


def test_small_gap_past_authority_concedes_the_limit_and_escalates(shop):
    a = advise(shop, "excuse", "钱包只剩55了", [], [], price=59)
    assert a.variant == "small_gap" and a.concession.amount <= a.agent_limit < a.gap
    assert a.escalate and "请示主管" in a.escalate_reason


def test_budget_and_shortfall_give_the_gap_without_a_list_price(shop):
    a = advise(shop, "excuse", "余额97 差两块", [], [])
    assert a.order_total == 99 and a.gap == 2 and a.variant == "small_gap"
