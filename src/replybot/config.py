"""Where replybot finds its data and keeps its caches; REPLYBOT_* environment overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def data_root() -> Path:
    """The folder holding intents/, scripts_corpus/ and shops/.

    REPLYBOT_DATA_DIR wins; an installed wheel carries them in replybot/_data; an editable
    install reads them from the repository checkout.
    """
    env = os.environ.get("REPLYBOT_DATA_DIR")
    if env:
        return Path(env)
    bundled = PACKAGE_DIR / "_data"
    if (bundled / "intents").is_dir():
        return bundled
    return PACKAGE_DIR.parent.parent


# The shipped corpus's vectors, beside intents/ (`replybot prepare --write-prebuilt` writes it):
# a fresh install then encodes only the texts a shop changed, and its first run takes the model
# preparation and the training, ~15 s instead of ~60 s. A file of another model, or older than
# the corpus, costs nothing: its vectors are not used, or only those of unchanged texts.
PREBUILT_VECTORS = Path("prebuilt") / "vectors.npz"


def prebuilt_vectors() -> Path | None:
    """The shipped corpus's vectors (PREBUILT_VECTORS under the data root);
    REPLYBOT_PREBUILT_VECTORS names another file, or none when empty (the benchmark's first run
    from nothing)."""
    env = os.environ.get("REPLYBOT_PREBUILT_VECTORS")
    if env is not None:
        return Path(env) if env else None
    return data_root() / PREBUILT_VECTORS


def cache_dir() -> Path:
    """Model folder and index caches: REPLYBOT_CACHE_DIR, else the user cache directory."""
    env = os.environ.get("REPLYBOT_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("replybot"))


def data_dir() -> Path:
    """Logs the user owns (clipboard picks): REPLYBOT_DATA_HOME, else the user data directory."""
    env = os.environ.get("REPLYBOT_DATA_HOME")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("replybot"))


@dataclass(frozen=True)
class Settings:
    """Paths and knobs one Suggester runs with."""

    intents_dir: Path = field(default_factory=lambda: data_root() / "intents")
    scripts_dir: Path = field(default_factory=lambda: data_root() / "scripts_corpus")
    default_shop: Path = field(default_factory=lambda: data_root() / "shops" / "default.yml")
    prebuilt_vectors: Path | None = field(default_factory=lambda: prebuilt_vectors())
    cache_dir: Path = field(default_factory=cache_dir)
    top_k: int = 3
