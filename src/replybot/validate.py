"""Meaning checks across intents/, scripts_corpus/ and the shop file: one line per problem."""

from __future__ import annotations

import re
from collections import defaultdict

from .corpus import Corpus
from .policy import DIALOGUE_PLACEHOLDERS, PLACEHOLDERS, template_names
from .taxonomy import BARGAIN, BUYER_TYPES, INTENTS, VARIANTS


def normalize_text(text: str) -> str:
    """Compare examples ignoring spacing, punctuation and case."""
    return re.sub(r"[\s\W_]+", "", text).lower()


def check_corpus(corpus: Corpus) -> list[str]:
    problems: list[str] = []
    problems += _check_intents(corpus)
    problems += _check_drafts(corpus)
    problems += _check_notes(corpus)
    return problems


def _check_intents(corpus: Corpus) -> list[str]:
    problems = []
    for intent in INTENTS:
        if intent not in corpus.intents:
            problems.append(f"intents/{intent}.yml: 缺少意图 \"{intent}\" 的文件")
    seen: dict[tuple[str, tuple], tuple[str, object]] = {}  # places stay lazy: lines only for errors
    for ex in corpus.examples:
        if ex.intent == BARGAIN and ex.buyer_type is None:
            problems.append(f"{ex.where}: buyer_type: 议价例句必须标注买家类型")
        if ex.intent != BARGAIN and ex.buyer_type is not None:
            problems.append(f"{ex.where}: buyer_type: 只有议价例句可以标注买家类型")
        key = (normalize_text(ex.text), tuple((t.role, normalize_text(t.text)) for t in ex.context))
        if not key[0]:
            continue
        if key in seen:
            other_intent, other_where = seen[key]
            if other_intent != ex.intent:
                problems.append(
                    f"{ex.where}: text: 例句 \"{ex.text}\" 同时出现在意图 {other_intent}（{other_where}）和 {ex.intent} 下"
                )
            else:
                problems.append(f"{ex.where}: text: 例句 \"{ex.text}\" 重复（{other_where}）")
        else:
            seen[key] = (ex.intent, ex.place)
    return problems


def _check_drafts(corpus: Corpus) -> list[str]:
    problems = []
    ids: dict[str, object] = {}
    by_intent: dict[str, int] = defaultdict(int)
    by_type: dict[str, int] = defaultdict(int)
    by_variant: dict[tuple[str, str], int] = defaultdict(int)
    for draft in corpus.drafts:
        entry = draft.entry
        if entry.id in ids:
            problems.append(f"{draft.where}: id: 话术编号 \"{entry.id}\" 重复（{ids[entry.id]}）")
        ids[entry.id] = draft.place
        by_intent[draft.intent] += 1
        if draft.intent == BARGAIN:
            if entry.buyer_type is None:
                problems.append(f"{draft.where}: buyer_type: 议价话术 \"{entry.id}\" 必须标注买家类型")
            else:
                by_type[entry.buyer_type] += 1
                if entry.variant:
                    by_variant[(entry.buyer_type, entry.variant)] += 1
        elif entry.buyer_type is not None:
            problems.append(f"{draft.where}: buyer_type: 只有议价话术可以标注买家类型（\"{entry.id}\"）")
        names, bad = template_names(entry.text)
        allowed = PLACEHOLDERS | (DIALOGUE_PLACEHOLDERS if draft.intent == BARGAIN else frozenset())
        for name in sorted(names - allowed):
            problems.append(f"{draft.where}: text: 话术 \"{entry.id}\" 的占位符 ${name} 在店铺政策中没有取值")
        if bad:
            problems.append(f"{draft.where}: text: 话术 \"{entry.id}\" 含有无效的 $（字面的 $ 请写作 $$）")
        for note in entry.notes:
            if note not in corpus.shop.notes:
                problems.append(f"{draft.where}: notes: 话术 \"{entry.id}\" 引用了未知的政策说明 \"{note}\"")
    for intent in INTENTS:
        if intent in corpus.intents and by_intent[intent] == 0:
            problems.append(f"scripts_corpus/{intent}.yml: 意图 \"{intent}\" 没有任何话术")
    if by_intent[BARGAIN]:
        for buyer_type in BUYER_TYPES:
            if by_type[buyer_type] == 0:
                problems.append(f"scripts_corpus/bargain.yml: 买家类型 \"{buyer_type}\" 没有任何话术")
        for buyer_type, variants in VARIANTS.items():
            for variant in variants:
                if by_type[buyer_type] and by_variant[(buyer_type, variant)] == 0:
                    problems.append(
                        f"scripts_corpus/bargain.yml: 买家类型 \"{buyer_type}\" 缺少变体 \"{variant}\" 的话术"
                    )
    return problems


def _check_notes(corpus: Corpus) -> list[str]:
    problems = []
    for note_id, note in corpus.shop.notes.items():
        names, bad = template_names(note.text)
        where = corpus.shop_where.get(("notes", note_id), "shops/default.yml")
        for name in sorted(names - PLACEHOLDERS):
            problems.append(f"{where}: notes.{note_id}.text: 占位符 ${name} 在店铺政策中没有取值")
        if bad:
            problems.append(f"{where}: notes.{note_id}.text: 含有无效的 $（字面的 $ 请写作 $$）")
    return problems
