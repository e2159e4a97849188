"""Earlier turns from a --context file: a JSON list of turns, or a dialogue object with `turns`."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from .errors import InputError
from .schemas import Turn


def load_context(path: Path) -> list[Turn]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: 无法读取前文文件（{exc.strerror}）") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: 前文文件不是 UTF-8 编码") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: 前文文件不是有效的 JSON（{exc.msg}）") from None
    if isinstance(data, dict) and "turns" in data:
        data = data["turns"]
    if not isinstance(data, list):
        raise InputError(f"{path}: 前文文件应为对话轮次的列表，或带 turns 的对象")
    turns = [{"role": t.get("role"), "text": t.get("text")} if isinstance(t, dict) else t for t in data]
    try:
        return TypeAdapter(list[Turn]).validate_python(turns)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path}: 第 {loc} 项无效: {err['msg']}") from None
