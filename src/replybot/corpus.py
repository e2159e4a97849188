"""intents/ + scripts_corpus/ + shop policy YAML → one validated, immutable Corpus."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import CorpusError
from .schemas import DraftEntry, IntentExample, IntentFile, ScriptsFile, ShopPolicy, Turn
from .yamlio import Path_, line_of, load_yaml, locator, pydantic_problems


@dataclass(frozen=True)
class Place:
    """Where an entry was written; the line is looked up only when a message needs it."""

    display: str
    lines: dict = field(repr=False, compare=False)
    loc: Path_ = ()

    def __str__(self) -> str:
        line = line_of(self.lines, self.loc)
        return f"{self.display}:{line}" if line else self.display


@dataclass(frozen=True)
class Example:
    """One labelled buyer message from intents/, with where it was written."""

    intent: str
    text: str
    context: tuple[Turn, ...]
    buyer_type: str | None
    place: Place

    @property
    def where(self) -> str:
        return str(self.place)


@dataclass(frozen=True)
class Draft:
    """One reply draft from scripts_corpus/, with its intent and where it was written."""

    intent: str
    entry: DraftEntry
    place: Place

    @property
    def where(self) -> str:
        return str(self.place)

    @property
    def id(self) -> str:
        return self.entry.id


@dataclass(frozen=True)
class Corpus:
    intents: dict[str, IntentFile]
    examples: tuple[Example, ...]
    drafts: tuple[Draft, ...]
    shop: ShopPolicy
    shop_where: dict[Path_, str]
    content_hash: str  # of the intents and drafts files: all the index is built from (the shop only fills text)

    def drafts_by_id(self) -> dict[str, Draft]:
        return {d.id: d for d in self.drafts}


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _deep_merge(base.get(key), value) if key in base else value
        return out
    return over


def _merge_locations(base: dict[Path_, str], over: dict[Path_, str]) -> dict[Path_, str]:
    out = dict(base)
    out.update(over)
    return out


def load_shop(default_path: Path, user_path: Path | None, root: Path) -> tuple[ShopPolicy, dict[Path_, str]]:
    """The default shop with the user's shop file laid over it (only differing values needed)."""
    display = _display(default_path, root)
    data, lines = load_yaml(default_path, display)
    where = {loc: f"{display}:{line}" for loc, line in lines.items()}
    if user_path is not None:
        if not user_path.is_file():
            raise CorpusError([f"{user_path}: 店铺文件不存在"])
        user_display = str(user_path)
        user_data, user_lines = load_yaml(user_path, user_display)
        if user_data is None:
            user_data = {}
        if not isinstance(user_data, dict):
            raise CorpusError([f"{user_display}:1: 店铺文件应为映射（键: 值）"])
        data = _deep_merge(data or {}, user_data)
        where = _merge_locations(where, {loc: f"{user_display}:{line}" for loc, line in user_lines.items()})
    try:
        shop = ShopPolicy.model_validate(data)
    except ValidationError as exc:
        raise CorpusError(pydantic_problems(exc, lambda loc: _where(where, loc, display))) from None
    return shop, where


def _where(where: dict[Path_, str], loc: Path_, fallback: str) -> str:
    for end in range(len(loc), -1, -1):
        if loc[:end] in where:
            return where[loc[:end]]
    return fallback


def _yaml_files(folder: Path, display: str) -> list[Path]:
    if not folder.is_dir():
        raise CorpusError([f"{display}: 目录不存在"])
    return sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml"))


def load_corpus(
    intents_dir: Path, scripts_dir: Path, default_shop: Path, user_shop: Path | None = None
) -> Corpus:
    """Read and validate every data file; raise CorpusError with one line per problem."""
    from .validate import check_corpus

    root = intents_dir.parent
    problems: list[str] = []
    hasher = hashlib.sha256()
    intents: dict[str, IntentFile] = {}
    examples: list[Example] = []
    drafts: list[Draft] = []

    for path in _yaml_files(intents_dir, _display(intents_dir, root)):
        display = _display(path, root)
        try:
            data, lines = load_yaml(path, display)
        except CorpusError as exc:
            problems += exc.problems
            continue
        hasher.update(path.read_bytes())
        try:
            parsed = IntentFile.model_validate(data)
        except ValidationError as exc:
            problems += pydantic_problems(exc, locator(display, lines))
            continue
        if parsed.id != path.stem:
            problems.append(f"{display}:{line_of(lines, ('id',))}: id: 意图 \"{parsed.id}\" 与文件名 \"{path.stem}\" 不一致")
        if parsed.id in intents:
            problems.append(f"{display}:1: id: 意图 \"{parsed.id}\" 重复定义")
        intents[parsed.id] = parsed
        for i, ex in enumerate(parsed.examples):
            examples.append(Example(parsed.id, ex.text, tuple(ex.context), ex.buyer_type, Place(display, lines, ("examples", i))))

    for path in _yaml_files(scripts_dir, _display(scripts_dir, root)):
        display = _display(path, root)
        try:
            data, lines = load_yaml(path, display)
        except CorpusError as exc:
            problems += exc.problems
            continue
        hasher.update(path.read_bytes())
        try:
            parsed_scripts = ScriptsFile.model_validate(data)
        except ValidationError as exc:
            problems += pydantic_problems(exc, locator(display, lines))
            continue
        for i, entry in enumerate(parsed_scripts.drafts):
            drafts.append(Draft(parsed_scripts.intent, entry, Place(display, lines, ("drafts", i))))

    try:
        shop, shop_where = load_shop(default_shop, user_shop, root)
    except CorpusError as exc:
        problems += exc.problems
        shop, shop_where = None, {}

    if problems:
        raise CorpusError(problems)
    corpus = Corpus(intents, tuple(examples), tuple(drafts), shop, shop_where, hasher.hexdigest()[:16])
    problems = check_corpus(corpus)
    if problems:
        raise CorpusError(problems)
    return corpus


CACHE_FORMAT = "2"  # 2: content_hash leaves the shop out


def _source_files(intents_dir: Path, scripts_dir: Path, default_shop: Path, user_shop: Path | None) -> list[Path]:
    files = []
    for folder in (intents_dir, scripts_dir):
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml"))
    return files + [p for p in (default_shop, user_shop) if p is not None]


def load_corpus_cached(
    intents_dir: Path, scripts_dir: Path, default_shop: Path, user_shop: Path | None, cache_root: Path
) -> Corpus:
    """load_corpus, reusing a pickled copy keyed by the files' bytes: parsing and checking ~1,500
    YAML entries costs a quarter second that a one-shot CLI call cannot spare."""
    import pickle

    hasher = hashlib.sha256(f"{CACHE_FORMAT}|{intents_dir}|{scripts_dir}".encode())
    try:
        for path in _source_files(intents_dir, scripts_dir, default_shop, user_shop):
            hasher.update(f"|{path}|".encode())
            hasher.update(path.read_bytes())
    except OSError:
        return load_corpus(intents_dir, scripts_dir, default_shop, user_shop)  # let it report the problem
    cached = cache_root / "corpus" / f"{hasher.hexdigest()[:24]}.pickle"
    from .cachedirs import KEEP_CORPUS_PICKLES, mark_used, prune_oldest

    try:
        corpus = pickle.loads(cached.read_bytes())
        if isinstance(corpus, Corpus):
            mark_used(cached)
            return corpus
    except Exception:  # missing, truncated or from another version: parse again
        pass
    corpus = load_corpus(intents_dir, scripts_dir, default_shop, user_shop)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(corpus, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, cached)
    except OSError:
        pass  # a read-only cache only costs speed
    prune_oldest(cached, KEEP_CORPUS_PICKLES, suffix=".pickle")
    return corpus


__all__ = ["Corpus", "Draft", "Example", "IntentExample", "load_corpus", "load_corpus_cached", "load_shop"]
