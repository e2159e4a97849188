"""End to end on the real model and the real index, with messages that are not in intents/."""

from __future__ import annotations

import difflib

import pytest

from replybot.schemas import Turn

B, A = "buyer", "agent"

# (message, earlier turns, expected intent); written for these tests, checked against intents/ below.
PER_INTENT = [
    ("这件外套还能再少点钱不", [], "bargain"),
    ("我腰围二尺二该拍S还是M", [], "size"),
    ("图上是米白，收到的怎么发黄", [], "colour"),
    ("拆开包装一股刺鼻的胶水味儿", [], "odour"),
    ("今天下单明天能寄出去吗", [], "shipping"),
    ("这条裙子的XL码啥时候有货", [], "out_of_stock"),
    ("你们这服务太烂了 我要找平台投诉你们", [], "complaint"),
    ("裤子不合适想退掉 怎么操作", [], "returns"),
    ("这个羊毛衫洗一次会缩水起球吗", [], "quality"),
    ("哈喽 有人在线不", [], "greeting"),
    ("下错单了 收货地址要改成公司的", [], "order_change"),
    ("可以先收货再付钱吗", [], "payment"),
    ("行 那就这样吧 谢啦", [], "other"),
]

FOLLOW_UPS = [
    ("那XL呢", [(B, "这件黑色M码还有吗"), (A, "亲，M码暂时卖完了哦")], "out_of_stock"),
]

PER_BUYER_TYPE = [
    ("老板 能不能优惠一丢丢", [], "probing"),
    ("这次先买一件试试 好的话我让同事们都来你家买", [], "promising"),
    ("同款别的店铺才卖69 你这卖89", [], "comparing"),
    ("这价格也太离谱了吧", [], "assertive"),
    ("75包邮就拍 不行就算了", [], "ultimatum"),
    ("我是大学生 生活费不多 照顾一下嘛", [], "sympathy"),
    ("我微信钱包就剩六十块了 就这么多能卖不", [], "excuse"),
    (
        "再抹个零头呗",
        [(B, "能便宜点吗"), (A, "亲，这款已经是活动价了呢"), (B, "少五块嘛"), (A, "实在抱歉，真的让不了了")],
        "pestering",
    ),
]


def turns(pairs):
    return [Turn(role=r, text=t) for r, t in pairs]


def test_messages_are_not_training_examples(real_suggester):
    examples = [ex.text for ex in real_suggester.corpus.examples]
    for message, _, _ in PER_INTENT + FOLLOW_UPS + PER_BUYER_TYPE:
        for ex in examples:
            assert difflib.SequenceMatcher(None, message, ex).ratio() < 0.9, (message, ex)


@pytest.mark.parametrize("message,context,intent", PER_INTENT + FOLLOW_UPS)
def test_intent_per_category(real_suggester, message, context, intent):
    s = real_suggester.suggest(message, turns(context))
    assert s.intent == intent, (s.intent, s.alternatives)
    assert len(s.drafts) == 3
    assert all(d.id in {x.id for x in real_suggester.corpus.drafts} for d in s.drafts)
    assert len({d.move for d in s.drafts}) == 3
    assert all("$" not in d.text for d in s.drafts)


@pytest.mark.parametrize("message,context,buyer_type", PER_BUYER_TYPE)
def test_buyer_type(real_suggester, message, context, buyer_type):
    s = real_suggester.suggest(message, turns(context))
    assert s.intent == "bargain"
    assert s.buyer_type == buyer_type, (s.buyer_type, s.buyer_type_confidence)
    assert all(d.buyer_type == buyer_type for d in s.drafts)


def test_headline_example(real_suggester):
    s = real_suggester.suggest("能便宜点吗")
    assert (s.intent, s.buyer_type) == ("bargain", "probing")
    assert s.policy_notes


@pytest.mark.parametrize(
    "message",
    ["😂😂😂", "hello, is this in stock?", "a" * 10_000, "亲" * 5000, "在吗\x07\x1b[31m", "？？？"],
)
def test_odd_messages_give_a_result(real_suggester, message):
    s = real_suggester.suggest(message)
    assert s.intent and len(s.drafts) >= 1


def test_no_draft_calls_an_unknown_gap_small_or_large(real_suggester):
    """Without our price the gap is unknown, so the drafts that make no claim about it come
    first; given the price (a 4-yuan gap), the small-gap drafts are offered."""
    message = "75包邮就拍 不行就算了"
    unknown = real_suggester.suggest(message)
    variants = [real_suggester.corpus.drafts_by_id()[d.id].entry.variant for d in unknown.drafts]
    neutral = [d for d in real_suggester.corpus.drafts if d.entry.buyer_type == "ultimatum" and not d.entry.variant]
    assert variants[: len(neutral)] == [None] * min(len(neutral), len(variants))
    known = real_suggester.suggest(message, price=79)
    assert known.bargaining.variant == "small_gap_small_order"
    assert known.drafts[0].variant == "small_gap_small_order"


def test_a_still_there_ping_mid_dialogue_gets_a_still_here_draft(real_suggester):
    """还在吗 after the agent said it was checking is not a first contact; as an opener it is."""
    context = [Turn(role="buyer", text="我的快递三天没动了"), Turn(role="agent", text="亲，我帮您查一下物流")]
    mid = real_suggester.suggest("还在吗", context)
    opener = real_suggester.suggest("还在吗")
    assert mid.intent == opener.intent == "greeting"
    assert "greeting-still-here" in [d.id for d in mid.drafts]
    assert "greeting-still-here" not in [d.id for d in opener.drafts]


def test_the_shipped_prebuilt_vectors_are_this_models_and_current(real_suggester):
    """prebuilt/vectors.npz (replybot prepare --write-prebuilt) must hold the vectors the encoder
    gives today, for most of today's corpus; regenerate it when this fails."""
    import numpy as np

    from replybot.config import prebuilt_vectors
    from replybot.index import corpus_texts
    from replybot.vectors import VectorStore

    encoder = real_suggester.encoder
    shipped = VectorStore(prebuilt_vectors(), encoder.model_id, encoder.dim).load()
    texts = set(corpus_texts(real_suggester.corpus))
    covered = len(texts & shipped.keys()) / len(texts)
    assert covered >= 0.9, f"prebuilt/vectors.npz covers {covered:.0%} of the corpus"
    sample = sorted(texts & shipped.keys())[::max(1, len(texts) // 40)]
    fresh = encoder.encode(sample)
    cosines = np.einsum("ij,ij->i", fresh, np.stack([shipped[t] for t in sample]))
    assert cosines.min() >= 0.9999
