"""Labelled dialogues (JSON Lines, taxonomy.md format) → validated records of turns to score."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ..errors import DatasetError
from ..schemas import Dialogue, LabelledTurn, Turn
from ..yamlio import format_loc


@dataclass(frozen=True)
class EvalTurn:
    """One labelled buyer turn with every turn before it as context."""

    file: str
    line: int
    dialogue_id: str
    index: int
    text: str
    context: tuple[Turn, ...]
    intent: str
    also: tuple[str, ...]
    buyer_type: str | None
    accept: tuple[str, ...]


def load_dialogues(paths: list[Path], known_drafts: set[str] | None = None) -> list[EvalTurn]:
    """Read every file; any problem anywhere means nothing is scored (one line per problem)."""
    problems: list[str] = []
    turns: list[EvalTurn] = []
    seen_ids: dict[str, str] = {}
    for path in paths:
        display = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            problems.append(f"{display}: 无法读取（{exc.strerror}）")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{display}: 不是 UTF-8 编码")
            continue
        n_labelled = 0
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{display}:{lineno}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{where}: 不是有效的 JSON（{exc.msg}）")
                continue
            try:
                dialogue = Dialogue.model_validate(data)
            except ValidationError as exc:
                for err in exc.errors():
                    msg = err["msg"].removeprefix("Value error, ")
                    problems.append(f"{where}: {format_loc(tuple(err['loc'])) or '(对话)'}: {msg}")
                continue
            if dialogue.id in seen_ids:
                problems.append(f"{where}: id: 对话编号 \"{dialogue.id}\" 重复（{seen_ids[dialogue.id]}）")
            seen_ids[dialogue.id] = where
            for i, turn in enumerate(dialogue.turns):
                if turn.role != "buyer" or turn.intent is None:
                    continue
                if known_drafts is not None:
                    for draft_id in turn.accept:
                        if draft_id not in known_drafts:
                            problems.append(f"{where}: turns[{i}].accept: 未知的话术编号 \"{draft_id}\"")
                if turn.intent == "bargain" and turn.buyer_type is None:
                    problems.append(f"{where}: turns[{i}].buyer_type: 议价消息缺少买家类型")
                n_labelled += 1
                turns.append(_eval_turn(display, lineno, dialogue, i, turn))
        if n_labelled == 0 and not any(p.startswith(display) for p in problems):
            problems.append(f"{display}: 没有任何带标注的买家消息")
    if problems:
        raise DatasetError(problems)
    return turns


def _eval_turn(display: str, lineno: int, dialogue: Dialogue, i: int, turn: LabelledTurn) -> EvalTurn:
    context = tuple(Turn(role=t.role, text=t.text) for t in dialogue.turns[:i])
    return EvalTurn(
        display, lineno, dialogue.id, i, turn.text, context, turn.intent or "", tuple(turn.also),
        turn.buyer_type, tuple(turn.accept),
    )
