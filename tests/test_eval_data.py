"""The labelled eval set: big enough, valid, and independent of the training examples."""

from __future__ import annotations

import difflib
from collections import Counter
from pathlib import Path

import pytest

from replybot.config import Settings
from replybot.corpus import load_corpus
from replybot.evaluation.dataset import load_dialogues
from replybot.taxonomy import BUYER_TYPES, INTENTS

EVAL_FILES = sorted((Path(__file__).resolve().parent.parent / "eval").glob("*.jsonl"))


@pytest.fixture(scope="module")
def corpus():
    s = Settings()
    return load_corpus(s.intents_dir, s.scripts_dir, s.default_shop)


@pytest.fixture(scope="module")
def turns(corpus):
    assert EVAL_FILES, "eval/*.jsonl is missing"
    return load_dialogues(EVAL_FILES, {d.id for d in corpus.drafts})


def test_size_and_balance(turns):
    assert len({t.dialogue_id for t in turns}) >= 200
    assert len(turns) >= 800
    per_intent = Counter(t.intent for t in turns)
    for intent in INTENTS:
        assert per_intent[intent] >= 30, (intent, per_intent[intent])
    per_type = Counter(t.buyer_type for t in turns if t.buyer_type)
    for buyer_type in BUYER_TYPES:
        assert per_type[buyer_type] >= 25, (buyer_type, per_type[buyer_type])
    assert sum(1 for t in turns if t.accept) >= 300
    assert sum(1 for t in turns if t.context) >= 400  # multi-turn


def _similar(a: str, b: str) -> bool:
    m = difflib.SequenceMatcher(None, a, b)
    return m.real_quick_ratio() >= 0.9 and m.quick_ratio() >= 0.9 and m.ratio() >= 0.9


def test_eval_texts_are_not_training_examples(turns, corpus):
    """Nor draft cues: the ranking's draft head is trained on them."""
    examples = sorted({ex.text for ex in corpus.examples} | {c for d in corpus.drafts for c in d.entry.cues}, key=len)
    clashes = []
    for t in turns:
        for ex in examples:
            if len(ex) > len(t.text) / 0.81 + 1:
                break
            if _similar(t.text, ex):
                clashes.append((t.dialogue_id, t.text, ex))
    assert not clashes, clashes[:20]
