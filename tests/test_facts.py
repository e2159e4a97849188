"""What the buyer already said, and drafts that would ask for it again."""

from __future__ import annotations

import pytest

from replybot.facts import stated_facts


@pytest.mark.parametrize(
    "texts,fact",
    [
        (["身高170体重130斤 风衣穿L还是XL"], "height_weight"),
        (["我165", "体重52kg"], "height_weight"),  # across turns
        (["一米六 一百斤 穿什么码"], "height_weight"),
        (["1米72 140斤"], "height_weight"),
        (["130斤穿多大"], "weight"),
        (["我95斤 拿哪个码"], "weight"),
        (["我腰70", "臀围98穿M会不会绷"], "waist_hip"),
        (["腰围二尺一穿几码"], "waist"),
        (["平时穿M 这件呢"], "usual_size"),
        (["平时穿37 脚背高 这款选多大"], "usual_size"),
        (["地址改成浙江省杭州市西湖区文三路100号"], "address"),
        (["电话换成13812345678"], "address"),
        (["[订单x] 申通单号[数字x]"], "order_number"),
        (["订单号123456789012 还没发货"], "order_number"),
        (["图发你了 赶紧给我换"], "photo"),
        (["[图片] 你看这里开线了"], "photo"),
        (["https://item.taobao.com/item.htm?id=1 这个有货吗"], "link"),
        (["抬头写公司的 税号[数字x]"], "invoice_title"),
        (["抬头是个人 写我名字就行"], "invoice_title"),
        (["买了半个月了还能退吗 一直没拆"], "past_window"),
        (["收到都三个礼拜了 还退得了吗"], "past_window"),
        (["鞋子买了一个多月了想换"], "past_window"),
        (["签收十几天了"], "past_window"),
        (["过了七天还能退吗"], "past_window"),  # "past" and the window's own length
        (["超了两天 能不能通融一下"], "past_window"),
        (["过了无理由期还能退吗"], "past_window"),
        (["物流说超区了 发不了"], "dispatch_failed"),
        (["我的包裹为啥揽收失败"], "dispatch_failed"),
    ],
)
def test_facts_the_buyer_gave(texts, fact):
    assert fact in stated_facts(texts)


@pytest.mark.parametrize(
    "texts,fact",
    [
        (["我165 穿M会不会短"], "height_weight"),  # height without weight: asking still helps
        (["满159包邮吗"], "height_weight"),
        (["满159包邮吗"], "weight"),
        (["我165 穿M会不会短"], "weight"),
        (["130斤穿多大"], "height_weight"),
        (["裤子腰围多少"], "waist_hip"),
        (["裤子腰围多少"], "waist"),
        (["腰围二尺一穿几码"], "waist_hip"),
        (["平时都在你家买"], "usual_size"),
        (["帮我改个地址"], "address"),
        (["退款什么时候到"], "order_number"),
        (["我拍张图给你看看吧"], "photo"),
        (["发票怎么开"], "invoice_title"),
        (["发票抬头写什么"], "invoice_title"),
        (["开专票要税号吗 税号是什么"], "invoice_title"),
        (["刚买就降价了"], "past_window"),
        (["买了三天 能退吗"], "past_window"),
        (["签收7天了能退吗"], "past_window"),  # day 7 is still inside a 7-day window
        (["支持七天无理由退货吗"], "past_window"),  # the policy, not the buyer's order
        (["一年内有问题可以找你们吗"], "past_window"),
        (["三天后能到吗"], "past_window"),
        (["我那个包裹现在到哪儿了"], "dispatch_failed"),
        (["偏远地区包邮吗"], "dispatch_failed"),
    ],
)
def test_no_fact_where_the_buyer_only_asks(texts, fact):
    assert fact not in stated_facts(texts)


def corpus_with_size_drafts(settings, fields: dict, which: tuple[int, ...] | None = None):
    """The mini corpus with `fields` set on its size drafts (those at `which`, or all)."""
    import yaml

    from replybot.corpus import load_corpus

    path = settings.scripts_dir / "size.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for k, draft in enumerate(data["drafts"]):
        if which is None or k in which:
            draft.update(fields)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_corpus(settings.intents_dir, settings.scripts_dir, settings.default_shop)


def test_a_draft_that_asks_for_a_given_fact_is_left_out(mini_settings):
    from replybot.rank import candidate_drafts

    corpus = corpus_with_size_drafts(mini_settings, {"asks_for": ["height_weight"]}, which=(0,))
    asking = next(i for i, d in enumerate(corpus.drafts) if d.entry.asks_for)
    assert asking in candidate_drafts(corpus, "size", None)
    assert asking not in candidate_drafts(corpus, "size", None, known=frozenset({"height_weight"}))
    # never an empty list: with every draft's asks answered, they are offered after all
    corpus = corpus_with_size_drafts(mini_settings, {"asks_for": ["height_weight"]})
    assert candidate_drafts(corpus, "size", None, known=frozenset({"height_weight"})) == candidate_drafts(corpus, "size", None)


def test_an_unknown_ask_is_a_data_error(mini_settings):
    from replybot.errors import CorpusError

    with pytest.raises(CorpusError, match='未知的询问项 "shoe_size"'):
        corpus_with_size_drafts(mini_settings, {"asks_for": ["shoe_size"]}, which=(0,))


def test_suggest_does_not_ask_for_height_and_weight_just_given(real_suggester):
    asked = real_suggester.suggest("风衣穿L还是XL", k=10)
    told = real_suggester.suggest("身高170体重130斤 风衣穿L还是XL", k=10)
    assert "size-ask-height-weight" in [d.id for d in asked.drafts]
    assert told.intent == "size" and "size-ask-height-weight" not in [d.id for d in told.drafts]


def test_a_draft_that_requires_a_fact_waits_for_it(mini_settings):
    from replybot.rank import candidate_drafts

    corpus = corpus_with_size_drafts(mini_settings, {"requires": ["height_weight"]}, which=(1,))
    needing = next(i for i, d in enumerate(corpus.drafts) if d.entry.requires)
    assert needing not in candidate_drafts(corpus, "size", None)
    assert needing in candidate_drafts(corpus, "size", None, known=frozenset({"height_weight"}))


def test_suggest_recommends_from_details_only_when_given(real_suggester):
    told = [d.id for d in real_suggester.suggest("我165 52kg 平时穿M 这件选哪个码", k=3).drafts]
    asked = [d.id for d in real_suggester.suggest("我穿什么码", k=10).drafts]
    assert told[0] == "size-recommend-from-details"
    assert "size-recommend-from-details" not in asked


def test_a_waist_alone_gets_the_chart_reading_and_both_get_a_recommendation(real_suggester):
    waist = [d.id for d in real_suggester.suggest("腰围72 阔腿裤拿几码", k=3).drafts]
    both = [d.id for d in real_suggester.suggest("腰围70 臀围96 选哪个码", k=10).drafts]
    neither = [d.id for d in real_suggester.suggest("裤子怎么选码", k=10).drafts]
    assert waist[0] == "size-waist-to-chart"
    assert both[0] == "size-recommend-from-waist-hip" and "size-waist-to-chart" not in both
    assert "size-waist-to-chart" not in neither and "size-recommend-from-waist-hip" not in neither


def test_the_shops_return_window_sets_past_window():
    assert "past_window" in stated_facts(["买了十天了 还能退吗"], return_window_days=7)
    assert "past_window" not in stated_facts(["买了十天了 还能退吗"], return_window_days=15)


def test_suggest_says_the_window_is_over_only_when_the_buyer_says_so(real_suggester):
    late = [d.id for d in real_suggester.suggest("买了一个多月了 还能退吗", k=3).drafts]
    fresh = [d.id for d in real_suggester.suggest("刚买就降价了", k=10).drafts]
    assert "returns-past-window" in late
    assert "returns-past-window" not in fresh


def test_agent_replied_only_once_an_agent_turn_is_in_the_dialogue():
    from replybot.facts import dialogue_facts
    from replybot.schemas import Turn

    assert "agent_replied" not in dialogue_facts("还在吗", [Turn(role="buyer", text="这件有M码吗")], 7)
    facts = dialogue_facts("还在吗", [Turn(role="buyer", text="我165 50kg"), Turn(role="agent", text="亲，我帮您查一下")], 7)
    assert {"agent_replied", "height_weight"} <= facts
