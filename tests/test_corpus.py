"""Loading and validating the data files: every problem named with file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from replybot.corpus import load_corpus
from replybot.errors import CorpusError

FIXTURES = Path(__file__).parent / "fixtures" / "bad"


def load(root: Path, shop: Path | None = None):
    return load_corpus(root / "intents", root / "scripts_corpus", root / "shops" / "default.yml", shop)


def problems(root: Path, shop: Path | None = None) -> list[str]:
    with pytest.raises(CorpusError) as info:
        load(root, shop)
    return info.value.problems


def edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_valid_corpus_loads(mini_root):
    corpus = load(mini_root)
    assert len(corpus.intents) == 13
    assert len(corpus.drafts) > 13
    assert corpus.content_hash


def test_an_own_shop_reuses_the_index(mini_root, tmp_path):
    """The index holds examples and cues only; a shop's values fill drafts at suggestion time, so
    an agent's own shop file must not cost a rebuild."""
    shop = tmp_path / "shop.yml"
    shop.write_text("name: 小林鞋铺\nproducts:\n  stock_hold_hours: 12\n", encoding="utf-8")
    own = load(mini_root, shop)
    assert own.shop.name == "小林鞋铺" and own.content_hash == load(mini_root).content_hash


def test_repository_corpus_is_valid():
    from replybot.config import Settings

    s = Settings()
    corpus = load_corpus(s.intents_dir, s.scripts_dir, s.default_shop)
    assert set(corpus.intents) == set(__import__("replybot.taxonomy", fromlist=["INTENTS"]).INTENTS)


def test_unknown_intent_id_is_named_with_file_and_line(mini_root):
    path = mini_root / "scripts_corpus" / "size.yml"
    edit_yaml(path, lambda d: d.update(intent="sise"))
    line = next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text.startswith("intent:"))
    assert problems(mini_root) == [f'scripts_corpus/size.yml:{line}: intent: 未知意图 "sise"']


def test_unknown_buyer_type(mini_root):
    edit_yaml(mini_root / "intents" / "bargain.yml", lambda d: d["examples"][0].update(buyer_type="haggler"))
    [line] = problems(mini_root)
    assert line.startswith("intents/bargain.yml:") and line.endswith('examples[0].buyer_type: 未知买家类型 "haggler"')


def test_duplicate_draft_ids(mini_root):
    edit_yaml(mini_root / "scripts_corpus" / "size.yml", lambda d: d["drafts"][1].update(id="size-a"))
    [line] = problems(mini_root)
    assert 'id: 话术编号 "size-a" 重复' in line and line.startswith("scripts_corpus/size.yml:")


def test_placeholder_without_shop_value(mini_root):
    edit_yaml(mini_root / "scripts_corpus" / "size.yml", lambda d: d["drafts"][0].update(text="亲，$no_such_value"))
    [line] = problems(mini_root)
    assert "占位符 $no_such_value 在店铺政策中没有取值" in line


def test_draft_citing_unknown_note(mini_root):
    edit_yaml(mini_root / "scripts_corpus" / "size.yml", lambda d: d["drafts"][0].update(notes=["nope"]))
    [line] = problems(mini_root)
    assert '引用了未知的政策说明 "nope"' in line


def test_intent_and_buyer_type_without_drafts(mini_root):
    edit_yaml(mini_root / "scripts_corpus" / "bargain.yml", lambda d: d.update(drafts=[x for x in d["drafts"] if x["buyer_type"] != "sympathy"]))
    assert problems(mini_root) == ['scripts_corpus/bargain.yml: 买家类型 "sympathy" 没有任何话术']


def test_same_example_under_two_intents(mini_root):
    edit_yaml(mini_root / "intents" / "size.yml", lambda d: d["examples"].append("有色差吗"))
    [line] = problems(mini_root)
    assert '例句 "有色差吗" 同时出现在意图' in line


def test_extra_field_is_forbidden(mini_root):
    edit_yaml(mini_root / "scripts_corpus" / "size.yml", lambda d: d["drafts"][0].update(tone="warm"))
    [line] = problems(mini_root)
    assert line.startswith("scripts_corpus/size.yml:") and line.endswith("drafts[0].tone: 未知字段")


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.yml")))
def test_bad_fixture_files(mini_root, name):
    """Each broken file replaces its namesake; the expected line is in its first comment."""
    bad = FIXTURES / name
    expected = bad.read_text(encoding="utf-8").splitlines()[0].removeprefix("# expect: ")
    folder = "shops" if name.startswith("shop") else "intents" if name.startswith("intent") else "scripts_corpus"
    target_name = {"shops": "default.yml"}.get(folder) or name.split("-", 1)[1]
    (mini_root / folder / target_name).write_text(bad.read_text(encoding="utf-8"), encoding="utf-8")
    found = problems(mini_root)
    assert any(expected in p for p in found), found


def test_user_shop_overrides_default(mini_root, tmp_path):
    own = tmp_path / "myshop.yml"
    own.write_text("name: 我的店\nshipping:\n  free_shipping_threshold: 59\n", encoding="utf-8")
    corpus = load(mini_root, own)
    assert corpus.shop.name == "我的店"
    assert corpus.shop.shipping.free_shipping_threshold == 59
    assert corpus.shop.shipping.default_courier == "中通"


def test_user_shop_errors_point_at_the_user_file(mini_root, tmp_path):
    own = tmp_path / "myshop.yml"
    own.write_text("name: 我的店\nshipping:\n  free_shipping_threshold: 很多\n", encoding="utf-8")
    assert problems(mini_root, own) == [f"{own}:3: shipping.free_shipping_threshold: 应为数字"]


def test_missing_user_shop_file(mini_root, tmp_path):
    assert problems(mini_root, tmp_path / "nope.yml") == [f"{tmp_path / 'nope.yml'}: 店铺文件不存在"]
