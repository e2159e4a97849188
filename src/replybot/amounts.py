"""Prices, discounts, budgets and quantities in a buyer's words, Arabic or Chinese numerals.

60卖不卖 · 80一袋吧 · 少10块 · 打个九折 · 两件150 · 支付宝只有120 · 五包就便宜了4块钱 · 一百二 · 三十五块五
"""

from __future__ import annotations

import re

from .schemas import Amounts

_DIGIT = {"零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNIT = {"十": 10, "百": 100, "千": 1000, "万": 10000}
CN_NUM = "零〇一幺二两俩三四五六七八九十百千万"
_COUNTERS = "件个包袋条双瓶盒套只箱份支斤"
_NOT_MONEY_AFTER = ("码", "号", "斤", "cm", "厘米", "公斤", "kg", "岁", "天", "小时", "点", "%", "年", "月", "米", "g", "克", "ml", "分钟", "次", "楼", "寸")


def chinese_number(text: str) -> float | None:
    """一百二 → 120, 两百五 → 250, 三十五 → 35, 十 → 10, 一二零 → 120; None if not a number."""
    if not text or any(ch not in CN_NUM for ch in text):
        return None
    if not any(ch in _UNIT for ch in text):  # digit by digit: 一二零
        return float(int("".join(str(_DIGIT[ch]) for ch in text)))
    total, section, digit = 0, 0, None
    last_unit = 1
    for ch in text:
        if ch in _DIGIT:
            digit = _DIGIT[ch]
        else:
            unit = _UNIT[ch]
            if unit == 10000:
                total += (section + (digit or 0)) * unit
                section, digit = 0, None
            else:
                section += (1 if digit is None else digit) * unit
                digit = None
            last_unit = unit
    if digit is not None:
        # a trailing digit after 百/千 is a shorthand for the next unit down: 一百二 = 120
        section += digit * (last_unit // 10 if last_unit >= 100 and text[-2] in _UNIT else 1)
    return float(total + section)


_NUMBER = re.compile(rf"(\d+(?:\.\d+)?|[{CN_NUM}]+)")


def _value(token: str) -> float | None:
    if token[0].isdigit():
        return float(token)
    return chinese_number(token)


def extract_amounts(text: str) -> Amounts:
    """Read the buyer's numbers by the words around them."""
    t = text.replace("，", ",").replace("　", " ").lower()
    t = re.sub(r"[¥￥]\s*", "¥", t)
    out = Amounts()
    # discount rates: 九折, 八五折, 8.5折, 9折
    for m in re.finditer(rf"(\d+(?:\.\d+)?|[{CN_NUM}]+)\s*折", t):
        tok = m.group(1)
        if tok[0].isdigit():
            v = float(tok)
            rate = v / 10 if v <= 10 else v / 100
        else:
            digits = [_DIGIT.get(ch) for ch in tok]
            if None in digits:
                continue
            rate = digits[0] / 10 + (digits[1] / 100 if len(digits) > 1 else 0)
        if 0 < rate < 1:
            out.discount_rate = round(rate, 3)
    t_no_rate = re.sub(rf"(\d+(?:\.\d+)?|[{CN_NUM}]+)\s*折", " ", t)

    consumed = 0
    for m in _NUMBER.finditer(t_no_rate):
        tok, start, end = m.group(1), m.start(), m.end()
        if start < consumed:
            continue
        if not tok[0].isdigit() and len(tok) == 1 and tok in "一两俩" and not re.match(rf"\s*[{_COUNTERS}块元]", t_no_rate[end:]):
            continue  # 一下, 一点, 两个人: not amounts
        value = _value(tok)
        if not value:  # None, or a bare 零 as in 零钱
            continue
        after = t_no_rate[end : end + 6]
        before = t_no_rate[max(0, start - 6) : start]
        # 三十五块五 → 35.5
        decimal = re.match(rf"\s*(块|元)([{CN_NUM}\d])(?![{CN_NUM}\d])", after)
        if decimal:
            value += (_value(decimal.group(2)) or 0) / 10
            consumed = end + decimal.end()
        if after.lstrip().startswith(_NOT_MONEY_AFTER) and not decimal:
            continue
        if re.match(rf"\s*[{_COUNTERS}](?!邮)", after) and value == int(value) and value < 1000:
            per_unit = value == 1 and out.prices and re.search(r"[\d块元]\s*$", t_no_rate[:start])
            if out.quantity is None and not per_unit:
                out.quantity = int(value)
            continue
        out.prices.append(value)
        if re.search(r"(少|便宜|减|优惠|让|抹|差)了?\s*(个|点)?$", before):
            out.discount_amount = value
        elif re.search(r"(只有|就剩|只剩|还剩|余额|剩下|就有|只能付|最多付?|带了)\s*(个|了)?$", before) or re.search(
            r"(零钱|钱包|卡里|卡上|支付宝|微信|花呗|余额|预算)(里|上|里面)?\s*(就|只|才|还)?\s*(有|剩|剩下)?\s*(个|了)?$", before
        ):
            out.budget = value
        elif re.match(rf"\s*(块|元|¥)?\s*[一每]\s*[{_COUNTERS}]", after):
            out.offer_price = value
        elif out.quantity and out.quantity > 1 and out.offer_total is None:
            out.offer_total = value
        elif out.offer_price is None:
            out.offer_price = value
    return out
