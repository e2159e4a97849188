"""Suggester: a buyer message and its earlier turns → a Suggestion (pure data)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .classify import Classification, TurnFeatures, agent_declined
from .config import Settings
from .corpus import Corpus, load_corpus_cached
from .errors import InputError
from .index import Bundle, Encoder, get_bundle, joined_text
from .bargain import BargainAdvice, advise
from .policy import DIALOGUE_PLACEHOLDERS, fill, intent_notes, money, notes_out, shop_values
from .rank import rank_drafts
from .schemas import DraftOut, IntentScore, Suggestion, Turn
from .taxonomy import BARGAIN, BUYER_TYPES, INTENTS

Progress = Callable[[str, float], None]
MAX_PREVIOUS_BUYER_TURNS = 8
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")


def clean_message(text: str) -> str:
    """Drop control and invisible characters; refuse a message with nothing left."""
    cleaned = _CONTROL.sub("", text).strip()
    if not cleaned:
        raise InputError("消息为空：请提供买家的消息内容")
    return cleaned


def default_encoder(cache_root: Path, progress: Progress | None = None) -> Encoder:
    """The lean numpy encoder (fast start); REPLYBOT_ENCODER=sentence-transformers for the reference one."""
    from .encoder import LeanEncoder, SentenceTransformerEncoder, prepare_model

    model_dir = prepare_model(cache_root, progress)
    if os.environ.get("REPLYBOT_ENCODER", "lean") == "sentence-transformers":
        return SentenceTransformerEncoder(model_dir)
    return LeanEncoder(model_dir)


class Suggester:
    """Loads the corpus at once; the model and index on first use, so errors surface early and cheaply."""

    def __init__(
        self,
        settings: Settings | None = None,
        shop_path: Path | None = None,
        encoder: Encoder | None = None,
        progress: Progress | None = None,
    ):
        self.settings = settings or Settings()
        self.corpus: Corpus = load_corpus_cached(
            self.settings.intents_dir, self.settings.scripts_dir, self.settings.default_shop, shop_path, self.settings.cache_dir
        )
        self.values = shop_values(self.corpus.shop)
        self._encoder = encoder
        self._bundle: Bundle | None = None
        self._progress = progress
        self.index_built = False

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = default_encoder(self.settings.cache_dir, self._progress)
        return self._encoder

    @property
    def bundle(self) -> Bundle:
        if self._bundle is None:
            self._bundle, self.index_built = get_bundle(self.corpus, self.encoder, self.settings.cache_dir, self._progress)
        return self._bundle

    # ---- steps ----------------------------------------------------------------------------

    def features(self, message: str, context: Sequence[Turn]) -> tuple[TurnFeatures, np.ndarray]:
        """Encode the message, its context and earlier buyer turns in one batch."""
        pairs = [(t.role, t.text) for t in context]
        previous_buyer = [t.text for t in context if t.role == "buyer"][-MAX_PREVIOUS_BUYER_TURNS:]
        texts = [message]
        if pairs:
            texts.append(joined_text(pairs, message))
        texts += previous_buyer
        vecs = self.encoder.encode(texts)
        featurizer = self.bundle.classifier.featurizer
        f = TurnFeatures(message_vec=vecs[0], message_sparse=featurizer.transform_one(message))
        if pairs:
            f.joined_vec = vecs[1]
            f.joined_sparse = featurizer.transform_one(texts[1])
            if previous_buyer:
                f.previous_buyer_vecs = vecs[2:]
                f.previous_buyer_sparse = [featurizer.transform_one(t) for t in previous_buyer]
            f.agent_declined = agent_declined(pairs)
        sims, _ = self.bundle.example_index.search(vecs[:1].astype(np.float32), 1)
        f.nearest_similarity = float(sims[0][0])
        query_vec = vecs[1] if pairs and len(message) <= 6 else vecs[0]
        return f, query_vec

    def classify(self, message: str, context: Sequence[Turn] = ()) -> Classification:
        f, _ = self.features(message, context)
        return self.bundle.classifier.classify(f)

    def suggest(
        self,
        message: str,
        context: Sequence[Turn] = (),
        k: int | None = None,
        price: float | None = None,
        qty: int | None = None,
        order_total: float | None = None,
    ) -> Suggestion:
        message = clean_message(message)
        k = self.settings.top_k if k is None else k
        if k < 1 or k > 20:
            raise InputError(f"-k 应在 1 到 20 之间（收到 {k}）")
        for name, value in (("--price", price), ("--qty", qty), ("--order-total", order_total)):
            if value is not None and value <= 0:
                raise InputError(f"{name} 应大于 0（收到 {value:g}）")
        f, query_vec = self.features(message, context)
        result = self.bundle.classifier.classify(f)
        advice = None
        if result.intent == BARGAIN:
            advice = advise(self.corpus.shop, result.buyer_type, message, context, result.earlier_bargaining, price, qty, order_total)
        return self.render_suggestion(message, result, query_vec, k, advice)

    def render_suggestion(
        self, message: str, result: Classification, query_vec: np.ndarray, k: int, advice: BargainAdvice | None = None
    ) -> Suggestion:
        corpus, shop = self.corpus, self.corpus.shop
        values = self.values | (dialogue_values(advice) if advice else {})
        ranked = rank_drafts(
            corpus, self.bundle, query_vec, result.intent, result.buyer_type, k,
            advice.variant if advice else None, frozenset(values) & DIALOGUE_PLACEHOLDERS,
        )
        drafts = []
        for r in ranked:
            entry = corpus.drafts[r.position].entry
            drafts.append(
                DraftOut(
                    id=entry.id,
                    text=fill(entry.text, values),
                    score=round(r.score, 4),
                    move=entry.move,
                    buyer_type=entry.buyer_type,
                    variant=entry.variant,
                    source=entry.source,
                    notes=notes_out(shop, entry.notes, self.values),
                )
            )
        alternatives = [
            IntentScore(intent=i, name=INTENTS[i], confidence=round(c, 4)) for i, c in result.ranking[1:4]
        ]
        return Suggestion(
            message=message,
            intent=result.intent,
            intent_name=INTENTS[result.intent],
            intent_confidence=round(result.confidence, 4),
            alternatives=alternatives,
            abstained=result.abstained,
            buyer_type=result.buyer_type,
            buyer_type_name=BUYER_TYPES[result.buyer_type] if result.buyer_type else None,
            buyer_type_confidence=None if result.buyer_type_confidence is None else round(result.buyer_type_confidence, 4),
            drafts=drafts,
            policy_notes=intent_notes(shop, result.intent, self.values),
            context_used=result.context_used,
            bargaining=advice,
        )


def dialogue_values(advice: BargainAdvice) -> dict[str, str]:
    """The numbers of this bargaining dialogue, for drafts that quote them."""
    out = {"concession": advice.concession.description}
    if advice.buyer_total is not None:
        out["buyer_price"] = money(advice.buyer_total)
    if advice.order_total is not None:
        out["our_price"] = money(advice.order_total)
        out["order_total"] = money(advice.order_total)
    if advice.gap is not None:
        out["gap"] = money(advice.gap)
    return out
