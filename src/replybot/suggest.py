"""Suggester: a buyer message and its earlier turns → a Suggestion (pure data)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .classify import Classification, TurnFeatures, refused_after_each_buyer_turn
from .config import Settings
from .corpus import Corpus, load_corpus_cached
from .errors import InputError
from .facts import dialogue_facts
from .index import NEIGHBOURS, Bundle, Encoder, compose_vectors, context_tail, encode_batches, get_bundle, joined_text
from .bargain import BargainAdvice, advise
from .policy import DIALOGUE_PLACEHOLDERS, fill, intent_notes, money, notes_out, shop_values
from .rank import rank_drafts
from .schemas import DraftOut, IntentScore, Suggestion, Turn
from .taxonomy import BARGAIN, BUYER_TYPES, INTENTS

Progress = Callable[[str, float], None]
MAX_PREVIOUS_BUYER_TURNS = 8
SHORT_QUERY_CHARS = 6
SHORT_QUERY_CONTEXT = 0.3  # measured on eval/ accept ids: hit@3 0.788 at 1.0 (context alone), 0.807 at 0.3 and at 0
QUERY_CONTEXT = 0.0  # longer messages say what they ask; context lowered hit@3 (0.2: 0.792)
MEMO_SIZE = 4096
BATCH = 64
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")


def clean_message(text: str) -> str:
    """Drop control and invisible characters; refuse a message with nothing left."""
    cleaned = _CONTROL.sub("", text).strip()
    if not cleaned:
        raise InputError("消息为空：请提供买家的消息内容")
    return cleaned


class SeenTexts:
    """What this process already computed for texts it has seen: in a dialogue every earlier
    turn was encoded (and its n-gram row built) when it arrived, so a new turn costs one
    encoding, not one per turn. Oldest entries go first beyond `size`."""

    def __init__(self, size: int = MEMO_SIZE):
        self.size = size
        self._vectors: dict[str, np.ndarray] = {}
        self._ngrams: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def vectors(self, encoder: Encoder, texts: list[str]) -> dict[str, np.ndarray]:
        missing = sorted(dict.fromkeys(t for t in texts if t not in self._vectors), key=len)
        if missing:
            self._vectors.update(zip(missing, encode_batches(encoder, missing, BATCH)))
        found = {t: self._vectors[t] for t in texts}
        self._trim(self._vectors)
        return found

    def ngrams(self, featurizer, text: str) -> tuple[np.ndarray, np.ndarray]:
        found = self._ngrams.get(text)
        if found is None:
            found = self._ngrams[text] = featurizer.transform_one(text)
            for a in found:
                a.setflags(write=False)  # shared by every later turn that reads this text
            self._trim(self._ngrams)
        return found

    def _trim(self, table: dict) -> None:
        while len(table) > self.size:  # oldest first (dicts keep insertion order)
            del table[next(iter(table))]


def default_encoder(cache_root: Path, progress: Progress | None = None) -> Encoder:
    """The lean encoder (fast start, compiled layers where possible). REPLYBOT_ENCODER=numpy keeps
    its layers in numpy; =sentence-transformers loads the reference encoder (slow start)."""
    from .encoder import LeanEncoder, SentenceTransformerEncoder, prepare_model

    model_dir = prepare_model(cache_root, progress)
    choice = os.environ.get("REPLYBOT_ENCODER", "lean")
    if choice == "sentence-transformers":
        return SentenceTransformerEncoder(model_dir)
    return LeanEncoder(model_dir, use_native=choice != "numpy")


def retrieval_query(message: str, message_vec: np.ndarray, joined_vec: np.ndarray) -> np.ndarray:
    """The vector drafts are ranked against: the message, leaning on the dialogue for a bare
    follow-up (那41码呢 asks what the earlier turns asked)."""
    w = SHORT_QUERY_CONTEXT if len(message) <= SHORT_QUERY_CHARS else QUERY_CONTEXT
    if w <= 0:
        return message_vec
    q = (1 - w) * message_vec + w * joined_vec
    return (q / max(float(np.linalg.norm(q)), 1e-12)).astype(np.float32)


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
        self._seen = SeenTexts()
        self.index_built = False

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = default_encoder(self.settings.cache_dir, self._progress)
        return self._encoder

    @property
    def bundle(self) -> Bundle:
        if self._bundle is None:
            self._bundle, self.index_built = get_bundle(
                self.corpus, self.encoder, self.settings.cache_dir, self._progress, self.settings.prebuilt_vectors
            )
        return self._bundle

    def write_prebuilt_vectors(self) -> Path:
        """Write the vectors of every corpus text to the prebuilt file shipped beside intents/
        (config.PREBUILT_VECTORS), from that file and the cache's store, encoding only what both lack."""
        from .index import corpus_vectors
        from .vectors import VectorStore, known_vectors

        target = self.settings.prebuilt_vectors
        if target is None:
            raise InputError("REPLYBOT_PREBUILT_VECTORS 为空：没有可写的预建向量文件")
        encoder = self.encoder
        _, cached, shipped = known_vectors(self.settings.cache_dir, target, encoder.model_id, encoder.dim)
        vectors = corpus_vectors(self.corpus, encoder, self._progress, shipped | cached)
        if not VectorStore(target, encoder.model_id, encoder.dim).save(dict(sorted(vectors.items())), {}):
            raise InputError(f"无法写入 {target}")
        return target

    def remember(self, texts: Sequence[str]) -> None:
        """Encode texts that will be earlier turns of the next query now, while nobody waits:
        the clip helper does this with the reply the agent picked, so the buyer's next message
        costs one encoding instead of two."""
        self._seen.vectors(self.encoder, list(texts))

    def forget_seen_texts(self) -> None:
        """Start a new conversation's worth of encodings (benchmarks time the cold path)."""
        self._seen = SeenTexts()

    # ---- steps ----------------------------------------------------------------------------

    def features(self, message: str, context: Sequence[Turn]) -> tuple[TurnFeatures, np.ndarray]:
        return self.features_many([(message, context)])[0]

    def features_many(self, items: Sequence[tuple[str, Sequence[Turn]]]) -> list[tuple[TurnFeatures, np.ndarray]]:
        """Features of many turns with one batched encoding of the texts not seen yet."""
        plans = []
        needed: list[str] = []
        for message, context in items:
            pairs = [(t.role, t.text) for t in context]
            tail = context_tail(pairs) if pairs else []
            buyer_at = [i for i, t in enumerate(context) if t.role == "buyer"][-MAX_PREVIOUS_BUYER_TURNS:]
            previous_buyer = [(pairs[i][1], context_tail(pairs[:i])) for i in buyer_at]
            plans.append((message, pairs, tail, previous_buyer))
            needed += [message, *tail, *(t for text, before in previous_buyer for t in [text, *before])]
        vectors = self._seen.vectors(self.encoder, needed)
        bundle = self.bundle
        featurizer = bundle.classifier.featurizer
        sparse = lambda text: self._seen.ngrams(featurizer, text)  # noqa: E731
        message_vecs = np.stack([vectors[m] for m, *_ in plans]).astype(np.float32)
        sims, rows = bundle.example_index.search(message_vecs, NEIGHBOURS)
        out = []
        joined_at: list[int] = []
        for row, (message, pairs, tail, previous_buyer) in enumerate(plans):
            f = TurnFeatures(message_vec=message_vecs[row], message_sparse=sparse(message))
            f.nearest_similarity = float(sims[row][0])
            f.message_neighbours = (sims[row], rows[row])
            query_vec = message_vecs[row]
            if pairs:
                parts = tail + [message]
                f.joined_vec = compose_vectors(np.stack([vectors[t] for t in parts]), parts)
                f.joined_sparse = sparse(joined_text(pairs, message))
                joined_at.append(row)
                if previous_buyer:
                    f.previous_buyer_vecs = np.stack([vectors[t] for t, _ in previous_buyer])
                    f.previous_buyer_sparse = [sparse(t) for t, _ in previous_buyer]
                    joined_parts = [before + [t] for t, before in previous_buyer]
                    f.previous_buyer_joined_vecs = np.stack(
                        [compose_vectors(np.stack([vectors[x] for x in parts]), parts) for parts in joined_parts]
                    )
                    f.previous_buyer_joined_sparse = [sparse(" ".join(parts)) for parts in joined_parts]
                f.refused_after = refused_after_each_buyer_turn(pairs, len(previous_buyer))
                query_vec = retrieval_query(message, message_vecs[row], f.joined_vec)
            out.append((f, query_vec))
        if joined_at:
            joined = np.stack([out[row][0].joined_vec for row in joined_at]).astype(np.float32)
            j_sims, j_rows = bundle.example_index.search(joined, NEIGHBOURS)
            for k, row in enumerate(joined_at):
                out[row][0].joined_neighbours = (j_sims[k], j_rows[k])
        return out

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
        return self.suggest_many([(message, context)], k, price, qty, order_total)[0]

    def suggest_many(
        self,
        items: Sequence[tuple[str, Sequence[Turn]]],
        k: int | None = None,
        price: float | None = None,
        qty: int | None = None,
        order_total: float | None = None,
    ) -> list[Suggestion]:
        """Suggestions for many (message, earlier turns) pairs, encoded in batches."""
        k = self.settings.top_k if k is None else k
        if k < 1 or k > 20:
            raise InputError(f"-k 应在 1 到 20 之间（收到 {k}）")
        for name, value in (("--price", price), ("--qty", qty), ("--order-total", order_total)):
            if value is not None and value <= 0:
                raise InputError(f"{name} 应大于 0（收到 {value:g}）")
        cleaned = [(clean_message(message), context) for message, context in items]
        out = []
        for (message, context), (f, query_vec) in zip(cleaned, self.features_many(cleaned)):
            result = self.bundle.classifier.classify(f)
            advice = None
            if result.intent == BARGAIN:
                advice = advise(self.corpus.shop, result.buyer_type, message, context, result.earlier_bargaining, price, qty, order_total)
            stated = dialogue_facts(message, context, self.corpus.shop.returns.window_days)
            out.append(self.render_suggestion(message, result, query_vec, k, advice, stated))
        return out

    def render_suggestion(
        self,
        message: str,
        result: Classification,
        query_vec: np.ndarray,
        k: int,
        advice: BargainAdvice | None = None,
        stated: frozenset[str] = frozenset(),
    ) -> Suggestion:
        """`stated`: what the dialogue has already settled (facts.dialogue_facts), not asked again."""
        corpus, shop = self.corpus, self.corpus.shop
        values = self.values | (dialogue_values(advice) if advice else {})
        ranked = rank_drafts(
            corpus, self.bundle, query_vec, result.intent, result.buyer_type, k,
            advice.variant if advice else None, (frozenset(values) & DIALOGUE_PLACEHOLDERS) | stated,
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
        alternatives = [  # after an abstention the closest intent leads the list
            IntentScore(intent=i, name=INTENTS[i], confidence=round(c, 4)) for i, c in result.ranking if i != result.intent
        ][:3]
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
