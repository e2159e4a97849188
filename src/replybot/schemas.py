"""Pydantic models at the edges: the YAML data files, labelled dialogues and the Suggestion output."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .taxonomy import BUYER_TYPES, INTENTS, VARIANTS

ID_PATTERN = re.compile(r"^[a-z0-9_-]+$")
# What a draft may ask the buyer for (`asks_for`) or take as said (`requires`); facts.stated_facts
# says which the buyer already gave.
# "gap" is a dialogue value the bargaining reader computes (policy.DIALOGUE_PLACEHOLDERS);
# "agent_replied" says the agent has replied earlier in the dialogue (facts.dialogue_facts);
# "past_window" that the buyer says the return window is over (bought longer ago than it lasts);
# "dispatch_failed" that the buyer says the parcel cannot be sent or delivered.
ASKABLE_FACTS = (
    "height_weight", "weight", "waist", "waist_hip", "usual_size", "address", "order_number", "photo", "link", "invoice_title", "gap",
    "agent_replied", "past_window", "dispatch_failed",
)


class Strict(BaseModel):
    """Data files reject unknown keys so a typo is reported, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_intent(value: str) -> str:
    if value not in INTENTS:
        raise ValueError(f'未知意图 "{value}"')
    return value


def check_buyer_type(value: str | None) -> str | None:
    if value is not None and value not in BUYER_TYPES:
        raise ValueError(f'未知买家类型 "{value}"')
    return value


class Turn(Strict):
    role: Literal["buyer", "agent"]
    text: str

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("内容为空")
        return v


# ---- intents/ ----------------------------------------------------------------------------------


class IntentExample(Strict):
    text: str
    context: list[Turn] = []
    buyer_type: str | None = None

    _bt = field_validator("buyer_type")(classmethod(lambda cls, v: check_buyer_type(v)))

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("内容为空")
        return v


class IntentFile(Strict):
    id: str
    name: str
    description: str
    examples: list[IntentExample] = Field(min_length=1)

    _id = field_validator("id")(classmethod(lambda cls, v: check_intent(v)))

    @field_validator("examples", mode="before")
    @classmethod
    def _plain_strings(cls, v: object) -> object:
        """A plain string is shorthand for {text: ...}."""
        if isinstance(v, list):
            return [{"text": e} if isinstance(e, str) else e for e in v]
        return v


# ---- scripts_corpus/ ---------------------------------------------------------------------------


class DraftEntry(Strict):
    id: str
    buyer_type: str | None = None
    variant: str | None = None
    move: str
    text: str
    notes: list[str] = Field(min_length=1)
    cues: list[str] = []
    asks_for: list[str] = []  # facts the draft asks the buyer for; not offered once all are given
    requires: list[str] = []  # facts the draft takes as said (按您说的身高体重…); offered only then
    source: str

    _bt = field_validator("buyer_type")(classmethod(lambda cls, v: check_buyer_type(v)))

    @field_validator("asks_for", "requires")
    @classmethod
    def _known_facts(cls, v: list[str]) -> list[str]:
        unknown = [f for f in v if f not in ASKABLE_FACTS]
        if unknown:
            raise ValueError(f'未知的询问项 "{unknown[0]}"（可用: {", ".join(ASKABLE_FACTS)}）')
        return v

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not ID_PATTERN.match(v):
            raise ValueError(f'编号 "{v}" 只能用小写字母、数字、- 和 _')
        return v

    @model_validator(mode="after")
    def _variant_fits_type(self) -> DraftEntry:
        if self.variant is not None:
            allowed = VARIANTS.get(self.buyer_type or "", ())
            if self.variant not in allowed:
                raise ValueError(
                    f'变体 "{self.variant}" 不适用于买家类型 "{self.buyer_type}"'
                    + (f"（可用: {', '.join(allowed)}）" if allowed else "")
                )
        return self


class ScriptsFile(Strict):
    intent: str
    drafts: list[DraftEntry] = Field(min_length=1)

    _intent = field_validator("intent")(classmethod(lambda cls, v: check_intent(v)))


# ---- shops/ ------------------------------------------------------------------------------------

Money = float


class Shipping(Strict):
    free_shipping_threshold: Money
    excluded_regions: list[str]
    default_courier: str
    courier_on_request: str
    courier_on_request_surcharge: Money
    dispatch_hours: int


class Returns(Strict):
    window_days: int
    buyer_pays_postage: str
    shop_pays_postage: str


class Payment(Strict):
    cash_on_delivery: bool
    cod_surcharge: Money


class Products(Strict):
    size_tolerance_cm: str
    restock_days: int
    stock_hold_hours: int = 24  # how long an item promised to a buyer is kept unpaid


class Gift(Strict):
    name: str
    cost: Money = Field(ge=0)


class AgentAuthority(Strict):
    max_round_off: Money = Field(ge=0)
    max_discount_percent: float = Field(ge=0, le=100)
    free_shipping_min_order: Money = Field(ge=0)
    coupon_amount: Money = Field(ge=0)
    coupon_min_order: Money = Field(ge=0)
    supervisor_order_threshold: Money = Field(gt=0)
    floor_price_percent: float = Field(gt=0, le=100)


class Promotion(Strict):
    name: str
    threshold: Money = Field(ge=0)
    discount: Money = Field(ge=0)


class PolicyNote(Strict):
    intent: str
    text: str

    _intent = field_validator("intent")(classmethod(lambda cls, v: check_intent(v)))


class CatalogItem(Strict):
    name: str
    price: Money = Field(gt=0)
    aliases: list[str] = []  # what buyers and agents call it in chat: 开衫, 风衣


class BargainingBands(Strict):
    """Where the seed's price-gap and order-amount variants begin, in this shop's money."""

    small_gap_percent: float = Field(ge=0, le=100)  # a gap at or under this share of the order is small
    small_gap_amount: Money = Field(ge=0)  # ... or at or under this many yuan
    fair_order_amount: Money = Field(ge=0)  # orders at or above this are a fair amount
    postage_cost: Money = Field(ge=0)  # what waiving postage costs the shop


class ShopPolicy(Strict):
    name: str
    service_hours: str
    shipping: Shipping
    returns: Returns
    payment: Payment
    products: Products
    gifts: list[Gift] = Field(min_length=1)
    agent_authority: AgentAuthority
    bargaining: BargainingBands
    promotions: list[Promotion] = Field(min_length=1)
    notes: dict[str, PolicyNote] = Field(min_length=1)
    catalog: list[CatalogItem] = []


# ---- labelled dialogues (eval) -----------------------------------------------------------------


class LabelledTurn(Strict):
    role: Literal["buyer", "agent"]
    text: str
    intent: str | None = None
    buyer_type: str | None = None
    also: list[str] = []
    accept: list[str] = []

    _intent = field_validator("intent")(classmethod(lambda cls, v: None if v is None else check_intent(v)))
    _bt = field_validator("buyer_type")(classmethod(lambda cls, v: check_buyer_type(v)))

    @field_validator("also")
    @classmethod
    def _also(cls, v: list[str]) -> list[str]:
        return [check_intent(x) for x in v]

    @model_validator(mode="after")
    def _labels_on_buyer_turns(self) -> LabelledTurn:
        if self.role == "agent" and (self.intent or self.buyer_type or self.also or self.accept):
            raise ValueError("只有买家消息可以带标注")
        if self.buyer_type and self.intent != "bargain":
            raise ValueError("buyer_type 只用于意图为 bargain 的消息")
        return self


class Dialogue(Strict):
    id: str
    turns: list[LabelledTurn] = Field(min_length=1)
    source: str | None = None


# ---- output ------------------------------------------------------------------------------------


class IntentScore(BaseModel):
    intent: str
    name: str
    confidence: float


class NoteOut(BaseModel):
    id: str
    text: str


class DraftOut(BaseModel):
    id: str
    text: str
    score: float
    move: str
    buyer_type: str | None = None
    variant: str | None = None
    source: str
    notes: list[NoteOut]


class Amounts(BaseModel):
    """What the buyer said about money and quantity in one message."""

    offer_price: float | None = None  # the buyer's price per unit (60卖不卖, 80一袋)
    offer_total: float | None = None  # the buyer's price for several units (两件150)
    discount_amount: float | None = None  # 少10块
    discount_rate: float | None = None  # 九折 → 0.9
    budget: float | None = None  # 只有120
    quantity: int | None = None  # 两件, 五包
    prices: list[float] = []  # every money amount seen, in order


class Concession(BaseModel):
    kind: Literal["none", "gift", "round_off", "free_shipping", "coupon", "discount", "hold_price", "pay_later"]
    description: str
    amount: float = 0.0  # yuan off the buyer's price
    cost: float = 0.0  # what it costs the shop


class BargainAdvice(BaseModel):
    """What `--json` adds under `bargaining`."""

    round: int
    refusals: int
    amounts: Amounts
    list_price: float | None = None
    quantity: int = 1
    order_total: float | None = None
    buyer_total: float | None = None
    gap: float | None = None
    gap_percent: float | None = None
    variant: str | None = None
    floor_total: float | None = None
    agent_limit: float | None = None
    concession: Concession
    escalate: bool = False
    escalate_reason: str | None = None


class Suggestion(BaseModel):
    """What `replybot suggest --json` prints: one object per buyer message."""

    message: str
    intent: str
    intent_name: str
    intent_confidence: float
    alternatives: list[IntentScore]
    abstained: bool
    buyer_type: str | None = None
    buyer_type_name: str | None = None
    buyer_type_confidence: float | None = None
    drafts: list[DraftOut]
    policy_notes: list[NoteOut]
    context_used: bool = False
    bargaining: BargainAdvice | None = None
