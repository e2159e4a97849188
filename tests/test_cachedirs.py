"""The cache keeps the few most recently used indexes, corpus pickles and model formats."""

from __future__ import annotations

import os
import time

from replybot.cachedirs import STALE_TEMP_S, prune_oldest


def _entries(folder, names_ages):
    now = time.time()
    for name, age in names_ages.items():
        path = folder / name
        path.mkdir()
        (path / "f").write_text("x")
        os.utime(path, (now - age, now - age))
    return folder


def test_only_the_most_recently_used_are_kept(tmp_path):
    _entries(tmp_path, {"a": 50, "b": 40, "c": 30, "d": 20, "e": 10, "current": 100})
    prune_oldest(tmp_path / "current", keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "d", "e"]


def test_temporary_entries_go_only_when_stale(tmp_path):
    _entries(tmp_path, {".tmp-live": 10, ".tmp-dead": STALE_TEMP_S + 60, "current": 0})
    prune_oldest(tmp_path / "current", keep=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-live", "current"]


def test_prefix_and_suffix_limit_what_is_pruned(tmp_path):
    _entries(tmp_path, {"model-v1": 30, "model-v2": 20, "model-v3": 0, "other": 40})
    prune_oldest(tmp_path / "model-v3", keep=1, prefix="model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-v3", "other"]
    for name, age in {"x.pickle": 30, "y.pickle": 20, "z.123.tmp": 10}.items():
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, (time.time() - age,) * 2)
    prune_oldest(tmp_path / "y.pickle", keep=1, suffix=".pickle")
    assert not (tmp_path / "x.pickle").exists() and (tmp_path / "y.pickle").exists() and (tmp_path / "z.123.tmp").exists()


def test_edits_leave_a_bounded_number_of_indexes(mini_settings, mini_root, fake_encoder):
    from test_corpus import edit_yaml

    from replybot.cachedirs import KEEP_INDEXES
    from replybot.index import get_bundle
    from replybot.suggest import Suggester

    first = Suggester(mini_settings, encoder=fake_encoder).corpus
    get_bundle(first, fake_encoder, mini_settings.cache_dir)
    for k in range(KEEP_INDEXES + 2):
        time.sleep(0.01)  # distinct modification times
        if k == KEEP_INDEXES:
            get_bundle(first, fake_encoder, mini_settings.cache_dir)  # used again: kept
        edit_yaml(mini_root / "intents" / "size.yml", lambda d, k=k: d["examples"].append(f"我穿{40 + k}码的鞋子选哪个"))
        get_bundle(Suggester(mini_settings, encoder=fake_encoder).corpus, fake_encoder, mini_settings.cache_dir)
    indexes = list((mini_settings.cache_dir / "index").iterdir())
    assert len(indexes) == KEEP_INDEXES
    _, built = get_bundle(first, fake_encoder, mini_settings.cache_dir)
    assert not built
    assert len(list((mini_settings.cache_dir / "corpus").glob("*.pickle"))) <= 8
