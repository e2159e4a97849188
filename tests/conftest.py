from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakes import FakeEncoder  # noqa: E402
from minicorpus import write_corpus  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache and data-home folders unless it asks for the shared real model."""
    monkeypatch.setenv("REPLYBOT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("REPLYBOT_DATA_HOME", str(tmp_path / "data-home"))
    monkeypatch.delenv("REPLYBOT_DATA_DIR", raising=False)


@pytest.fixture
def mini_root(tmp_path) -> Path:
    return write_corpus(tmp_path / "data")


@pytest.fixture
def mini_settings(mini_root, tmp_path):
    from replybot.config import Settings

    return Settings(
        intents_dir=mini_root / "intents",
        scripts_dir=mini_root / "scripts_corpus",
        default_shop=mini_root / "shops" / "default.yml",
        cache_dir=tmp_path / "cache",
        prebuilt_vectors=None,  # the shipped file holds the real model's vectors, not the fake's
    )


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory) -> Path:
    """One prepared model and index for the whole run (REPLYBOT_TEST_CACHE reuses a warm one)."""
    env = os.environ.get("REPLYBOT_TEST_CACHE")
    return Path(env) if env else tmp_path_factory.mktemp("real-cache")


@pytest.fixture(scope="session")
def real_suggester(real_cache):
    from replybot.config import Settings
    from replybot.suggest import Suggester

    return Suggester(Settings(cache_dir=real_cache))


@pytest.fixture
def use_real_cache(real_suggester, real_cache, monkeypatch):
    """For CLI tests on the real model: point the CLI at the session's prepared cache."""
    real_suggester.bundle  # prepared once
    monkeypatch.setenv("REPLYBOT_CACHE_DIR", str(real_cache))
    return real_cache
