"""YAML loading that remembers line numbers, so validation errors can point at file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import CorpusError

Path_ = tuple[str | int, ...]


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            _walk(value_node, path + (str(key_node.value),), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), lines)


class LineMap(dict):
    """Key path → line, composed only when an error needs a line (libyaml parses the data fast)."""

    def __init__(self, text: str):
        super().__init__()
        self._text: str | None = text

    def _fill(self) -> None:
        if self._text is not None:
            text, self._text = self._text, None
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            if node is not None:
                lines: dict[Path_, int] = {}
                _walk(node, (), lines)
                self.update(lines)

    def __contains__(self, key: object) -> bool:
        self._fill()
        return super().__contains__(key)

    def __getitem__(self, key: Path_) -> int:
        self._fill()
        return super().__getitem__(key)

    def items(self):
        self._fill()
        return super().items()


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path, display: str) -> tuple[Any, dict[Path_, int]]:
    """Parse one YAML file; return the data and a (lazy) map from key path to line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CorpusError([f"{display}: 不是 UTF-8 编码"]) from None
    except OSError as exc:
        raise CorpusError([f"{display}: 无法读取（{exc.strerror}）"]) from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CorpusError([f"{display}{where}: YAML 格式错误: {problem}"]) from None
    return data, LineMap(text)


def line_of(lines: dict[Path_, int], loc: Path_) -> int | None:
    """The line of the deepest known prefix of loc."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def format_loc(loc: Path_) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def locator(display: str, lines: dict[Path_, int]) -> Callable[[Path_], str]:
    """A function giving `file:line` for a key path of one file."""

    def where(loc: Path_) -> str:
        line = line_of(lines, loc)
        return f"{display}:{line}" if line else display

    return where


def pydantic_problems(exc: Any, where: Callable[[Path_], str], prefix: Path_ = ()) -> list[str]:
    """Turn a pydantic ValidationError into `file:line: field: message` lines."""
    problems = []
    for err in exc.errors():
        full = prefix + tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        msg = _translate(err["type"], msg)
        problems.append(f"{where(full)}: {format_loc(full) or '(文件)'}: {msg}")
    return problems


_MESSAGES = {
    "missing": "缺少此字段",
    "extra_forbidden": "未知字段",
    "string_type": "应为文本",
    "int_parsing": "应为整数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为列表",
    "dict_type": "应为映射",
    "model_type": "应为映射",
    "too_short": "不能为空",
    "literal_error": "取值无效",
}


def _translate(kind: str, msg: str) -> str:
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind.startswith(("greater_than", "less_than")):
        return f"数值超出范围（{msg}）"
    return msg
