"""What changed since an earlier report: figure by figure, and turn by turn.

Steering by the accuracy alone hides churn: a change that fixes five turns and breaks four moves
the figure by one. `replybot eval FILE --against OLD_REPORT_DIR` lists both sides, so a data or
method change can be judged on what it fixed and what it broke.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError

FIGURES = (
    "intent_accuracy", "intent_accuracy_strict", "intent_macro_f1", "buyer_type_accuracy",
    "accuracy_at_80_coverage", "hit_at_1", "hit_at_3", "mrr",
)


def load_report(folder: Path) -> tuple[dict, list[dict]]:
    """report.json and errors.json of an earlier `--report DIR`."""
    out = []
    for name in ("report.json", "errors.json"):
        path = folder / name
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise InputError(f"{path}: 找不到（--against 需要之前用 --report 写出的目录）") from None
        except OSError as exc:
            raise InputError(f"{path}: 无法读取（{exc.strerror}）") from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InputError(f"{path}: 不是有效的 JSON") from None
    summary, errors = out
    if not isinstance(summary, dict) or not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
        raise InputError(f"{folder}: report.json 或 errors.json 的格式不对")
    return summary, errors


def _key(error: dict) -> tuple[str, int, str]:
    return str(error.get("dialogue_id")), int(error.get("index", -1)), str(error.get("error"))


def _brief(error: dict) -> dict:
    return {k: error.get(k) for k in ("dialogue_id", "index", "text", "error", "gold", "predicted", "gold_buyer_type", "buyer_type", "accept_rank")}


def changes(previous: tuple[dict, list[dict]], summary: dict, errors: list[dict]) -> dict:
    """Figure deltas and the turns that became wrong or right (a turn counts once per kind of
    error: intent, buyer_type, draft). Turns of files the earlier run did not score are left out."""
    old_summary, old_errors = previous
    figures = {}
    for name in FIGURES:
        old, new = old_summary.get(name), summary.get(name)
        if isinstance(old, (int, float)) and isinstance(new, (int, float)):
            figures[name] = {"before": old, "after": new, "change": round(new - old, 4)}
    same_files = sorted(old_summary.get("files", [])) == sorted(summary.get("files", []))
    # Reports written before errors.json listed draft misses have no accept_rank: compare intents and types only.
    with_drafts = any("accept_rank" in e for e in old_errors) or not old_errors
    kept = lambda e: with_drafts or e.get("error") != "draft"  # noqa: E731
    old_by_key = {_key(e): e for e in old_errors if kept(e)}
    new_by_key = {_key(e): e for e in errors if kept(e)}
    broken = [_brief(new_by_key[k]) for k in new_by_key if k not in old_by_key]
    fixed = [_brief(old_by_key[k]) for k in old_by_key if k not in new_by_key]
    return {
        "same_files": same_files,
        "draft_misses_compared": with_drafts,
        "figures": figures,
        "newly_wrong": broken,
        "newly_right": fixed,
    }
