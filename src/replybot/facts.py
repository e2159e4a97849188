"""What the buyer has already told us, so no draft asks for it again.

A buyer who wrote 身高170体重130斤 and is asked 方便告诉我您的身高和体重吗 feels unheard, and the
agent has to skip that draft. Drafts that ask for something name it in `asks_for`; a draft whose
every ask is already answered in the buyer's turns is not offered, and a draft that builds on a
fact (`requires`: 按您说的身高体重…) is offered only once it is given (rank.candidate_drafts).
Regular expressions, not a model: the facts are few and formulaic, and a miss only means a
draft is offered as before.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    from .schemas import Turn

from .amounts import chinese_number
from .privacy import ADDRESS, LANDLINE, ORDER, PHONE, mask

_CN_NUM = "一二三四五六七八九十两"
_HEIGHT = re.compile(
    r"身高\s*[:：]?\s*\d|(?<!\d)1[4-9]\d(?:\.\d)?\s*(?:cm|CM|厘米|公分)?(?![\d斤kKg码元块号%])|(?<!\d)1(?:\.\d{1,2}|米\d{1,2})(?![\d%])"
    rf"|一米[{_CN_NUM}]|(?<!\d)(?:[89]\d|1[0-3]\d)(?:\.\d)?\s*(?:cm|CM|厘米|公分)"  # a child's height, with its unit
)
_WEIGHT = re.compile(rf"体重\s*[:：]?\s*\d|\d{{2,3}}(?:\.\d)?\s*(?:斤|kg|KG|Kg|公斤|千克)|[{_CN_NUM}]百[{_CN_NUM}]?十?斤|(?<![百{_CN_NUM}])[{_CN_NUM}]十[{_CN_NUM}]?斤")
_WAIST = re.compile(r"腰围?\s*(?:是|有)?\s*[:：]?\s*(?:\d{2,3}|\d\s*尺\s*\d?)|(?<!臀围)(?<!臀)[一二两三]尺[一二三四五六七八九]?")
_HIP = re.compile(r"臀围?\s*(?:是|有)?\s*[:：]?\s*(?:\d{2,3}|\d\s*尺\s*\d?|[一二两三]尺[一二三四五六七八九]?)")
_USUAL_SIZE = re.compile(r"平时(?:都|一般)?(?:穿|买|拿|选)?\s*(?:[XxSsMmLl]{1,4}\b|\d?XL|\d{2}(?:码|号)|\d{2}(?![\d斤公kK]))")
_DATA_TOKEN = re.compile(r"\[(订单|单号|快递单|运单|地址|手机|电话|图片|链接|商品)[^\]]{0,6}\]")
_PHOTO = re.compile(r"\[图片\]|(?:图|照片|截图|视频)(?:片)?(?:已经|都)?(?:发|传)(?:给)?(?:你|您)?了|拍(?:了|好了)(?:照片?)?发(?:给)?(?:你|您)|发(?:你|您)看")
_LINK = re.compile(r"https?://|\[链接|\[商品|item\.(?:taobao|jd)|tb\.cn|3\.cn")
# How long ago the buyer bought or received the item: a number (digits or 一..十, 半, 几) and a
# unit; not a policy phrase (7天无理由, 一年内) nor a promise (三天后).
_DURATION = re.compile(
    rf"(过了|超过|超了|超出)?\s*(\d{{1,3}}|[{_CN_NUM}半几]{{1,3}})\s*多?\s*(?:个)?\s*多?\s*(天|日|周|星期|礼拜|月|年)(?!内|之内|以内|无理由|后|左右)"
)
_PAST_WINDOW_WORDS = re.compile(r"过期|超时|超期|超了|(?:过了|超过|超出)(?:了)?.{0,3}(?:无理由|退货|退换|期限|时间)")
# The buyer says the parcel cannot be sent or delivered (超区, 揽收失败, 地址有问题): a draft that
# explains a failed dispatch claims what only this makes known.
_DISPATCH_FAILED = re.compile(
    r"发不(?:出|了)|寄不(?:出|了)|送不(?:到|了)|派送不到|到不了|(?:不|没法)(?:送|配送|派送|派件)|超区|超出.{0,4}范围"
    r"|(?:揽收|揽件|发货|派送|配送)(?:失败|异常)|物流异常|没(?:有)?揽件|地址(?:有问题|不详细|太偏|不对)"
)
_UNIT_DAYS = {"天": 1, "日": 1, "周": 7, "星期": 7, "礼拜": 7, "月": 30, "年": 365}
_INVOICE = re.compile(r"(?<!什么)(?<!要)(?:税号|纳税人识别号)(?!是什么|是啥|在哪|怎么)|有限公司|抬头\s*(?:是|为|写|[:：])\s*(?!什么|啥|哪|怎)\S")


def dialogue_facts(message: str, context: Sequence[Turn], return_window_days: int) -> frozenset[str]:
    """What the buyer has told us so far (stated_facts), and "agent_replied" once an agent turn
    is in the dialogue: a draft for a buyer who checks we are still there mid-conversation
    (`requires: [agent_replied]`) makes no sense as a first reply."""
    facts = stated_facts([message, *(t.text for t in context if t.role == "buyer")], return_window_days)
    return facts | {"agent_replied"} if any(t.role == "agent" for t in context) else facts


def _count(token: str) -> float | None:
    """A count of days, weeks…: 12, 十五 (amounts.chinese_number), 半 (0.5), 几 (a few, read as 3;
    十几 as 15); None for what is not a number."""
    if token.isdigit():
        return float(token)
    if token == "半":
        return 0.5
    return chinese_number(token.replace("十几", "十五").replace("几", "三"))


def says_past_window(text: str, return_window_days: int) -> bool:
    """The buyer says the return window is over: in so many words (过了无理由, 超时了), or by a
    time since buying longer than the window (买了半个月, 收到都三个礼拜了; 过了七天 counts on the day)."""
    if _PAST_WINDOW_WORDS.search(text):
        return True
    for m in _DURATION.finditer(text):
        count = _count(m.group(2))
        if count is None:
            continue
        days = count * _UNIT_DAYS[m.group(3)]
        if days > return_window_days or (m.group(1) and days >= return_window_days):
            return True
    return False


def stated_facts(buyer_texts: Iterable[str], return_window_days: int = 7) -> frozenset[str]:  # 7: the default shop's
    """Facts (schemas.ASKABLE_FACTS, all but "gap", which the bargaining reader knows, and
    "agent_replied", see dialogue_facts) that the buyer's messages already give."""
    text = "\n".join(buyer_texts)
    masked = mask(text)
    tokens = {m.group(1) for m in _DATA_TOKEN.finditer(text)}
    found = set()
    if _WEIGHT.search(text):
        found.add("weight")
        if _HEIGHT.search(text):
            found.add("height_weight")
    if _WAIST.search(text):
        found.add("waist")
        if _HIP.search(text):
            found.add("waist_hip")
    if _USUAL_SIZE.search(text):
        found.add("usual_size")
    if ADDRESS in masked or PHONE in masked or LANDLINE in masked or tokens & {"地址", "手机", "电话"}:
        found.add("address")
    if ORDER in masked or tokens & {"订单", "单号", "快递单", "运单"}:
        found.add("order_number")
    if _PHOTO.search(text) or "图片" in tokens:
        found.add("photo")
    if _LINK.search(text) or tokens & {"链接", "商品"}:
        found.add("link")
    if _INVOICE.search(text):
        found.add("invoice_title")
    if _DISPATCH_FAILED.search(text):
        found.add("dispatch_failed")
    if says_past_window(text, return_window_days):
        found.add("past_window")
    return frozenset(found)
