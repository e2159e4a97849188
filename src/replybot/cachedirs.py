"""Keep the cache folder from growing with every edit and upgrade.

Each edit of the corpus writes a new index (about 18 MB), each edit of the corpus or the shop file
a new parsed-corpus pickle, and each model-format upgrade a new model folder (about 550 MB). Nothing reads the old
ones again, except when an edit is undone or two shop files take turns, so the few most recently
used are kept and the rest removed.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

KEEP_INDEXES = 4
KEEP_CORPUS_PICKLES = 8
STALE_TEMP_S = 3600  # a temporary entry this old was left by a process that died


def mark_used(path: Path) -> None:
    """Record a use in the entry's modification time, which prune_oldest ranks by."""
    try:
        os.utime(path)
    except OSError:
        pass  # a read-only cache only loses the ranking


def prune_oldest(current: Path, keep: int, prefix: str = "", suffix: str = "") -> None:
    """Remove all but the `keep` most recently used entries beside `current` (itself always kept)
    whose names start with `prefix` and end with `suffix`; temporary entries (".…") only once they
    are stale. Errors are ignored: another process may be removing or using the same entry."""
    try:
        siblings = [
            p for p in current.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(suffix) and p != current
        ]
    except OSError:
        return
    now = time.time()
    ranked = []
    for path in siblings:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if path.name.startswith("."):
            if now - mtime > STALE_TEMP_S:
                _remove(path)
            continue
        ranked.append((mtime, path))
    ranked.sort(reverse=True)
    for _, path in ranked[max(keep - 1, 0) :]:
        _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except OSError:
            pass
