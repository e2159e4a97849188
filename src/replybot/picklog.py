"""The pick log: which draft an agent chose for which buyer message, one JSON object a line, masked.

Several helpers (two shops, two terminals) may append to the same file at once, so every line
goes out in one O_APPEND write under an exclusive lock and no line is lost or torn.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .privacy import mask

try:  # POSIX only; on Windows O_APPEND alone keeps lines whole for lines this short
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOG_NAME = "picks.jsonl"


def default_log_path() -> Path:
    from .config import data_dir

    return data_dir() / LOG_NAME


def pick_record(
    conversation: str,
    message: str,
    intent: str,
    buyer_type: str | None,
    draft_id: str,
    rank: int,
    final_text: str,
    edited: bool,
    now: datetime | None = None,
) -> dict:
    """One log line; the message and the text sent are masked here so no caller can forget to."""
    return {
        "ts": (now or datetime.now().astimezone()).isoformat(timespec="seconds"),
        "conversation": conversation,
        "message": mask(message),
        "intent": intent,
        "buyer_type": buyer_type,
        "draft_id": draft_id,
        "rank": rank,
        "edited": edited,
        "text": mask(final_text),
    }


@dataclass(frozen=True)
class PickLog:
    """Appends records to a JSON Lines file, safely from several processes."""

    path: Path

    def append(self, record: dict) -> None:
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:  # a regular file takes it in one write; loop only for the pathological case
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)  # closing releases the lock

    def read(self) -> list[dict]:
        """Every record, oldest first (for tests and a quick look)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
