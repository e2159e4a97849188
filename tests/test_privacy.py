"""mask(): personal data out, prices, sizes and ordinary chat untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from replybot.privacy import ADDRESS, EMAIL, ID_CARD, LANDLINE, NAME, ORDER, PHONE, mask

REPO = Path(__file__).resolve().parent.parent

MASKED = [
    ("我的手机是13812345678", "我的手机是[手机号]"),
    ("电话 138 1234 5678 尽快发", "电话 [手机号] 尽快发"),
    ("手机138-1234-5678，麻烦改一下", "手机[手机号]，麻烦改一下"),
    ("+86 13812345678", PHONE),
    ("座机010-12345678", "座机[电话]"),
    ("(0571)87654321", LANDLINE),
    ("身份证110105199003071234", "身份证[身份证号]"),
    ("身份证号11010519900307123X", "身份证号[身份证号]"),
    ("订单号：E20231101000123", "订单号：[订单号]"),
    ("订单 3456789012345678901 什么时候发", "订单 [订单号] 什么时候发"),
    ("京东订单 250123456789 到哪了", "京东订单 [订单号] 到哪了"),
    ("快递单号SF1234567890123", "快递单号[订单号]"),
    ("邮箱 zhang.san@example.com", "邮箱 [邮箱]"),
    ("地址改成北京市朝阳区建国路88号", "地址改成[地址]"),
    ("收货地址：杭州西湖文三路", "收货地址：[地址]"),
    ("寄到上海市浦东新区张江路500弄12号", "寄到[地址]"),
    ("住在5号楼2单元", "住在[地址]"),
    ("我叫王小明，想问下有货吗", "我叫[姓名]，想问下有货吗"),
    ("收货人改成李四", "收货人改成[姓名]"),
    ("收货人王小明想改一下电话", "收货人[姓名]想改一下电话"),
    ("姓名 欧阳娜娜 电话13912345678", "姓名 [姓名] 电话[手机号]"),
    ("联系人：Tom Lee", "联系人：[姓名]"),
    (
        "收货人张三 13812345678 浙江省杭州市西湖区文三路123号华星小区5栋2单元301室",
        "收货人[姓名] [手机号] [地址]",
    ),
]

KEPT = [
    "80一袋吧",
    "41码没货了吗",
    "满199减20",
    "两件150",
    "60卖不卖卖我就拍",
    "平时穿M这款呢",
    "我165穿什么码",
    "130斤穿多大",
    "这两个区别大吗",
    "市场价多少",
    "什么时候能送到",
    "送到家门口吗",
    "新疆西藏等偏远地区不包邮吗",
    "10月3号发货吗",
    "双11有活动吗",
    "我叫朋友一起来买",
    "换个收货人",
    "收货人信息填错了",
    "请把抬头（个人姓名或单位名称加税号）发给我",
    "亲，48小时内发货，7天无理由退换",
    "能便宜20吗 发顺丰",
    "余额就剩50了",
    "我们小区门口的驿站能放吗",
    "一般都可以寄到的哦，到不了的村庄会放乡镇代理点",
]


@pytest.mark.parametrize("text,expected", MASKED)
def test_personal_data_is_masked(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_prices_sizes_and_chat_are_kept(text):
    assert mask(text) == text


def test_shop_drafts_are_left_alone():
    """The repository's reply drafts hold no personal data, so masking must not change one of them."""
    changed = []
    for path in sorted((REPO / "scripts_corpus").glob("*.yml")):
        for draft in yaml.safe_load(path.read_text(encoding="utf-8"))["drafts"]:
            if mask(draft["text"]) != draft["text"]:
                changed.append((draft["id"], draft["text"], mask(draft["text"])))
    assert not changed


# ---- properties ---------------------------------------------------------------------------------

# Chat around the personal data: Chinese words and punctuation, no digits or latin letters, which
# could legitimately merge with the number (a longer digit run is a different number).
filler = st.text(alphabet="亲能便宜点吗这件衣服还有货发什么快递谢谢好的，。！？ ", max_size=12)
mobile = st.builds(
    lambda p, a, b, sep: f"1{p}{a[:1]}{sep}{a[1:]}{sep}{b}",
    st.sampled_from("3456789"),
    st.text(alphabet="0123456789", min_size=5, max_size=5),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
    st.sampled_from(["", " ", "-"]),
)
order = st.text(alphabet="0123456789", min_size=12, max_size=20)
email = st.builds(
    lambda u, d: f"{u}@{d}.com",
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._", min_size=1, max_size=10).filter(lambda s: s[0].isalnum()),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(before=filler, secret=mobile, after=filler)
def test_mobile_numbers_never_survive(before, secret, after):
    out = mask(before + secret + after)
    assert PHONE in out
    assert secret.replace(" ", "").replace("-", "")[-8:] not in out.replace(" ", "").replace("-", "")
    assert out == before + PHONE + after


@settings(max_examples=200, deadline=None)
@given(before=filler, secret=order, after=filler)
def test_long_digit_runs_are_order_numbers(before, secret, after):
    out = mask(before + secret + after)
    assert secret not in out
    assert ORDER in out or PHONE in out or ID_CARD in out or LANDLINE in out


@settings(max_examples=100, deadline=None)
@given(before=filler, secret=email, after=filler)
def test_emails_never_survive(before, secret, after):
    assert mask(before + secret + after) == before + EMAIL + after


@settings(max_examples=200, deadline=None)
@given(
    price=st.integers(min_value=1, max_value=99999),
    unit=st.sampled_from(["一袋吧", "块", "元", "包邮", "码", "斤", "件", "cm", "号", "卖不卖", "能拍吗"]),
    before=filler,
)
def test_prices_and_sizes_are_kept(price, unit, before):
    text = f"{before}{price}{unit}"
    assert mask(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_mask_is_idempotent_and_total(text):
    once = mask(text)
    assert mask(once) == once


@pytest.mark.parametrize("token", [PHONE, LANDLINE, ID_CARD, ORDER, ADDRESS, NAME, EMAIL])
def test_tokens_survive_a_second_pass(token):
    assert mask(f"前面{token}后面") == f"前面{token}后面"
