"""Mask buyers' personal data (phones, ids, order numbers, addresses, names, emails) before anything is stored.

Buyer messages are full of it ("收货人张三 13812345678 浙江省杭州市…"), and the pick log must be safe
to share with a supervisor. Prices and sizes ("80一袋吧", "41码", "满199减20") stay as they are.
"""

from __future__ import annotations

import re

PHONE = "[手机号]"
LANDLINE = "[电话]"
ID_CARD = "[身份证号]"
ORDER = "[订单号]"
ADDRESS = "[地址]"
NAME = "[姓名]"
EMAIL = "[邮箱]"

_HAN = r"\u4e00-\u9fff"
# Boundaries on digits only: "订单号123456789012" and "电话13812345678" must still match.
_D0, _D1 = r"(?<![0-9A-Za-z])", r"(?![0-9A-Za-z])"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ID_CARD = re.compile(_D0 + r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]" + _D1)
_MOBILE = re.compile(r"(?<![0-9A-Za-z+])(?:(?:\+|00)?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}" + _D1)
_LANDLINE = re.compile(
    r"(?<![0-9A-Za-z])(?:(?:\(0\d{2,3}\)|（0\d{2,3}）|0\d{2,3})[\s-]?\d{7,8}(?:-\d{1,5})?|[48]00[\s-]?\d{3}[\s-]?\d{4})" + _D1
)
# "订单号：E20231101…" or "快递单号 SF1234…": whatever token follows the cue.
_ORDER_CUE = re.compile(r"((?:订单编号|订单号|订单|单号|运单号|快递单号|物流单号)\s*(?:是|为|:|：)?\s*)([A-Za-z0-9-]{6,})")
_LONG_DIGITS = re.compile(_D0 + r"\d{12,}" + _D1)
# Courier and platform formats: letters then a long digit run (SF1234567890123, JD0012345678901, YT…).
_TRACKING = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{1,4}\d{10,}" + _D1)

# An address is two or more address units in a row ("浙江省杭州市", "文三路123号", "5栋2单元301室"),
# or any clause after an address cue that holds at least one unit.
_NOT_PLACE = "到在寄送往是住的我你他她把给想要能可吗呢吧啊了"
_NAMED_UNIT = (
    rf"(?![{_NOT_PLACE}])[{_HAN}A-Za-z0-9](?:[^{_NOT_PLACE}\s，。,.!！?？:：;；、\[\]()（）]){{0,9}}?"
    r"(?:特别行政区|自治区|自治州|省|市|区|县|旗|镇|乡|街道|大道|路|街|巷|弄|胡同|村|组|社区|小区|花园|公寓|大厦|广场|中心|园区|苑|城)"
)
_NUMBER_UNIT = r"[0-9A-Za-z一二三四五六七八九十零〇]+(?:-\d+)?(?:号楼|号院|号|栋|幢|座|单元|楼|层|室|户)"
_UNIT = rf"(?:{_NUMBER_UNIT}|{_NAMED_UNIT})"
_ADDRESS = re.compile(rf"{_UNIT}(?:[\s,，]?{_UNIT})+")
_ONE_UNIT = re.compile(_UNIT)
_ADDRESS_CUE = re.compile(r"(?<!\[)((?:收货地址|收件地址|详细地址|地址|寄到|送到|发到|寄往|发往)\s*(?:是|为|改成|改为|换成|:|：)?\s*)([^，。,!！?？;；\n\[]+)")
# The strong cues always precede a name; "我叫" only when the name stands alone ("我叫王小明，…").
_NAME_BOUNDARY = rf"(?=$|[\s,，。.!！?？;；:：、\[\d]|电话|手机|联系|地址|收货|的)"
_NAME_STRONG = re.compile(
    rf"((?:收货人|收件人|联系人|寄件人|姓名|名字)\s*(?:是|为|叫|改成|改为|换成|:|：)?\s*)"
    rf"(?!信息|地址|电话|手机|姓名|名字|写|填|改|不|错|是谁|或|和|及|等)"
    rf"([{_HAN}·]{{2,4}}?{_NAME_BOUNDARY}|[A-Za-z][A-Za-z .]{{1,30}}[A-Za-z])"
)
# After 收货人-style cues a name may run straight into the next words ("收货人王小明想改电话").
_NAME_RUNON = re.compile(rf"((?:收货人|收件人|联系人|寄件人)\s*(?:是|为|改成|改为|换成|:|：)?\s*)(?!信息|地址|电话|手机|写|填|改|不|错|是谁)([{_HAN}]{{2,3}})")
_NAME_WEAK = re.compile(rf"((?:我叫|本人叫|我的名字是)\s*)([{_HAN}·]{{2,4}}?{_NAME_BOUNDARY})")


def mask(text: str) -> str:
    """The text with personal data replaced by [手机号]-style tokens; idempotent, everything else kept."""
    text = _EMAIL.sub(EMAIL, text)
    text = _ID_CARD.sub(ID_CARD, text)
    text = _MOBILE.sub(PHONE, text)
    text = _LANDLINE.sub(LANDLINE, text)
    text = _ORDER_CUE.sub(lambda m: m.group(1) + ORDER, text)
    text = _LONG_DIGITS.sub(ORDER, text)
    text = _TRACKING.sub(ORDER, text)
    text = _ADDRESS_CUE.sub(_mask_cued_address, text)
    text = _ADDRESS.sub(ADDRESS, text)
    text = _NAME_STRONG.sub(lambda m: m.group(1) + NAME, text)
    text = _NAME_RUNON.sub(lambda m: m.group(1) + NAME, text)
    text = _NAME_WEAK.sub(lambda m: m.group(1) + NAME, text)
    return text


def _mask_cued_address(m: re.Match[str]) -> str:
    clause = m.group(2)
    if clause[0] in _NOT_PLACE or clause.startswith(ADDRESS) or not _ONE_UNIT.search(clause):
        return m.group(0)
    trailing = clause[len(clause.rstrip()) :]
    return m.group(1) + ADDRESS + trailing
