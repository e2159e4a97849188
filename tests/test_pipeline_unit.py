"""The pipeline on the mini corpus with a fake encoder: index cache, ranking, filling, notes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from replybot.errors import InputError, MissingPolicyValue
from replybot.index import cache_key, get_bundle, load_bundle
from replybot.policy import fill
from replybot.schemas import Turn
from replybot.suggest import Suggester


@pytest.fixture
def suggester(mini_settings, fake_encoder):
    return Suggester(mini_settings, encoder=fake_encoder)


def test_suggestion_shape(suggester):
    s = suggester.suggest("能便宜点吗")
    assert s.intent in {"bargain", "other"}
    assert 0 <= s.intent_confidence <= 1
    assert len(s.drafts) <= 3
    for d in s.drafts:
        assert "$" not in d.text
        assert d.notes


def test_drafts_are_of_the_predicted_intent_and_distinct_moves(suggester):
    s = suggester.suggest("什么时候发货", k=4)
    assert all(d.id.startswith(s.intent) for d in s.drafts)
    assert len({d.move for d in s.drafts}) == len(s.drafts)


def test_k_bounds(suggester):
    with pytest.raises(InputError, match="-k 应在 1 到 20 之间"):
        suggester.suggest("在吗", k=0)


def test_blank_message_is_refused(suggester):
    with pytest.raises(InputError, match="消息为空"):
        suggester.suggest(" \t\x00 ")


def test_template_fill_reports_every_missing_name():
    with pytest.raises(MissingPolicyValue, match=r"\$a, \$b"):
        fill("亲 $b 和 ${a}", {})
    assert fill("满$x减$$5", {"x": "99"}) == "满99减$5"


def test_format_braces_are_left_alone():
    assert fill("亲 {0.__class__} $x", {"x": "1"}) == "亲 {0.__class__} 1"


def test_index_is_cached_and_rebuilt_when_corpus_changes(mini_settings, fake_encoder, mini_root):
    s1 = Suggester(mini_settings, encoder=fake_encoder)
    _, built = get_bundle(s1.corpus, fake_encoder, mini_settings.cache_dir)
    assert built
    _, built_again = get_bundle(s1.corpus, fake_encoder, mini_settings.cache_dir)
    assert not built_again
    from test_corpus import edit_yaml

    edit_yaml(mini_root / "intents" / "size.yml", lambda d: d["examples"].append("我穿39码的鞋子选哪个"))
    s2 = Suggester(mini_settings, encoder=fake_encoder)
    assert s2.corpus.content_hash != s1.corpus.content_hash
    _, built_third = get_bundle(s2.corpus, fake_encoder, mini_settings.cache_dir)
    assert built_third


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_corrupt_cache_is_detected_and_rebuilt(mini_settings, fake_encoder, damage):
    s = Suggester(mini_settings, encoder=fake_encoder)
    get_bundle(s.corpus, fake_encoder, mini_settings.cache_dir)
    folder = mini_settings.cache_dir / "index" / cache_key(fake_encoder.model_id, s.corpus)
    target = folder / "arrays.npz"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "garbage":
        target.write_bytes(b"\x00not a zip" * 50)
    else:
        (folder / "manifest.json").unlink()
    assert load_bundle(folder) is None
    bundle, built = get_bundle(s.corpus, fake_encoder, mini_settings.cache_dir)
    assert built and load_bundle(folder) is not None
    assert bundle.classifier.intent_head.classes


def test_pestering_needs_refusal_and_third_move(suggester):
    ctx = [
        Turn(role="buyer", text="能便宜点吗"),
        Turn(role="agent", text="亲，已经是最低价了呢"),
        Turn(role="buyer", text="给点优惠吧"),
        Turn(role="agent", text="实在抱歉哦"),
    ]
    result = suggester.classify("能便宜点吗", ctx)
    if result.intent == "bargain":
        assert result.buyer_type == "pestering"
        assert result.bargaining_moves >= 3


def test_parsed_corpus_is_cached_and_follows_edits(mini_settings, mini_root, fake_encoder):
    first = Suggester(mini_settings, encoder=fake_encoder)
    pickles = list((mini_settings.cache_dir / "corpus").glob("*.pickle"))
    assert len(pickles) == 1
    again = Suggester(mini_settings, encoder=fake_encoder)
    assert again.corpus.content_hash == first.corpus.content_hash
    size = mini_root / "intents" / "size.yml"
    size.write_text(size.read_text(encoding="utf-8").replace("有尺码表吗", "尺码表发我看看"), encoding="utf-8")
    edited = Suggester(mini_settings, encoder=fake_encoder)
    assert "尺码表发我看看" in {ex.text for ex in edited.corpus.examples}
    assert edited.corpus.content_hash != first.corpus.content_hash


def test_truncated_corpus_pickle_is_ignored(mini_settings, fake_encoder):
    Suggester(mini_settings, encoder=fake_encoder)
    (pickle_file,) = (mini_settings.cache_dir / "corpus").glob("*.pickle")
    pickle_file.write_bytes(pickle_file.read_bytes()[:100])
    assert len(Suggester(mini_settings, encoder=fake_encoder).corpus.examples) > 0


def test_abstention_only_where_other_beats_the_guesses():
    import numpy as np

    from replybot.index import choose_threshold

    conf = np.linspace(0.1, 1.0, 1000)
    # unsure guesses right 40% of the time, "other" right 10%: guessing is better, never abstain
    correct = np.r_[np.arange(100) % 5 < 2, np.ones(900, bool)]
    other = np.r_[np.arange(100) % 10 == 0, np.zeros(900, bool)]
    assert choose_threshold(conf, correct, other) == 0.0
    # the least sure 3%: guesses never right, "other" right half the time: abstain there (capped)
    correct[:30], other[:30] = False, np.arange(30) % 2 == 0
    assert conf[29] <= choose_threshold(conf, correct, other) <= conf[49] + 1e-9


def test_no_abstention_on_a_narrow_lead():
    """16 "other" against 14 right guesses among the 49 least sure (as on 2026-12-02) is no reason."""
    import numpy as np

    from replybot.index import choose_threshold

    conf = np.linspace(0.1, 1.0, 3280)
    correct = np.r_[np.arange(49) < 14, np.arange(3231) % 3 < 2]
    other = np.r_[np.arange(49) >= 33, np.arange(3231) % 3 == 2]
    assert choose_threshold(conf, correct, other) == 0.0


def test_no_abstention_on_a_handful_of_unlucky_examples():
    """4 right guesses against 5 "other" among the 16 least sure is noise, not a reason to abstain."""
    import numpy as np

    from replybot.index import MIN_ABSTAIN_EVIDENCE, choose_threshold

    conf = np.linspace(0.1, 1.0, 3000)
    correct = np.r_[np.arange(300) % 5 < 2, np.ones(2700, bool)]
    other = np.r_[np.arange(300) % 5 == 4, np.zeros(2700, bool)]
    correct[:16], other[:16] = np.arange(16) < 4, np.arange(16) >= 11
    assert choose_threshold(conf, correct, other) == 0.0
    # the same pattern over enough turns does move the cut
    n = 2 * MIN_ABSTAIN_EVIDENCE
    correct[:n], other[:n] = np.arange(n) % 4 == 0, np.arange(n) % 4 >= 2
    assert choose_threshold(conf, correct, other) >= conf[n - 1]


def _uniform_classifier(vote_weight: float):
    import numpy as np

    from replybot.classify import DialogueClassifier, LinearHead
    from replybot.features import NgramFeaturizer

    classes = ["bargain", "returns", "shipping"]
    head = LinearHead(classes, np.zeros((3, 4), np.float32), np.zeros((3, 1), np.float32), np.zeros(3, np.float32))
    examples = np.array([1, 1, 2, 0])  # example rows: returns, returns, shipping, bargain
    return DialogueClassifier(head, head, NgramFeaturizer(), 0.4, 0.0, 0.0, examples, vote_weight, 0.05)


def _features(neighbours):
    import numpy as np

    from replybot.classify import TurnFeatures

    empty = (np.zeros(0, np.int64), np.zeros(0, np.float32))
    return TurnFeatures(message_vec=np.zeros(4, np.float32), message_sparse=empty, message_neighbours=neighbours)


def test_nearest_examples_vote_beside_the_linear_head():
    import numpy as np

    near = (np.array([0.95, 0.94, 0.80, -1.0], np.float32), np.array([0, 1, 2, -1]))  # -1: fewer examples than asked
    p, _ = _uniform_classifier(0.4).intent_proba(_features(near))
    assert p.argmax() == 1  # the two close returns examples outvote the far shipping one
    assert abs(p.sum() - 1) < 1e-6 and p[1] <= 0.6 + 1 / 3 * 0.6 + 1e-6  # the head keeps its 60%
    p0, _ = _uniform_classifier(0.0).intent_proba(_features(near))
    assert np.allclose(p0, 1 / 3)  # no vote: the head alone


def test_draft_head_lifts_the_draft_its_cues_point_to():
    """The best single cue says draft 0; the head, trained on all cues, says draft 1 and wins."""
    import numpy as np

    from replybot.classify import LinearHead
    from replybot.index import Bundle, flat_index
    from replybot.rank import relevance

    keys = np.eye(3, dtype=np.float32)  # draft 0 owns key e0, draft 1 owns e1 and e2
    query = np.array([0.62, 0.55, 0.56], np.float32)
    query /= np.linalg.norm(query)
    head = LinearHead(["0", "1"], np.array([[0, 0, 0], [0, 4, 4]], np.float32), np.zeros((2, 0), np.float32), np.zeros(2, np.float32))
    bundle = Bundle(flat_index(keys), flat_index(keys), np.array([0, 1, 1]), None, {}, None)
    cue_only = relevance(bundle, query, [0, 1])
    assert cue_only[0] > cue_only[1]
    bundle.draft_head = head
    blended = relevance(bundle, query, [0, 1])
    assert blended[1] > blended[0]
    assert all(-1 <= v <= 1 for v in blended.values())
    assert set(relevance(bundle, query, [1])) == {1}  # the head's softmax runs over the candidates only


def test_draft_head_is_cached_with_the_index(mini_settings, fake_encoder):
    import numpy as np

    s = Suggester(mini_settings, encoder=fake_encoder)
    built, _ = get_bundle(s.corpus, fake_encoder, mini_settings.cache_dir)
    loaded = load_bundle(mini_settings.cache_dir / "index" / cache_key(fake_encoder.model_id, s.corpus))
    assert built.draft_head is not None and len(built.draft_head.classes) == len(s.corpus.drafts)
    q = fake_encoder.encode(["什么时候发货"])
    assert np.allclose(built.draft_head.logits(q, []), loaded.draft_head.logits(q, []))


def test_buyer_type_head_also_learns_from_bargaining_cues(mini_settings):
    from replybot.corpus import load_corpus
    from replybot.index import buyer_type_rows

    corpus = load_corpus(mini_settings.intents_dir, mini_settings.scripts_dir, mini_settings.default_shop)
    texts, types = buyer_type_rows(corpus)
    assert len(texts) == len(set(texts)) == len(types)
    assert "pestering" not in types
    for draft in corpus.drafts:
        if draft.entry.buyer_type and draft.entry.buyer_type != "pestering":
            assert set(draft.entry.cues) <= set(texts)
    assert {ex.text for ex in corpus.examples if ex.buyer_type and ex.buyer_type != "pestering"} <= set(texts)


def test_cues_vote_as_neighbours_but_not_for_the_one_nn_baseline(mini_settings, mini_root, fake_encoder):
    from test_corpus import edit_yaml

    from replybot.evaluation.baselines import nearest_neighbour
    from replybot.index import neighbour_rows

    edit_yaml(mini_root / "scripts_corpus" / "shipping.yml", lambda d: d["drafts"][0]["cues"].append("顺丰到乌鲁木齐要几天"))
    s = Suggester(mini_settings, encoder=fake_encoder)
    texts, labels = neighbour_rows(s.corpus)
    n = len(s.corpus.examples)
    assert texts[:n] == [ex.text for ex in s.corpus.examples] and labels[:n] == [ex.intent for ex in s.corpus.examples]
    cue_rows = {t: label for t, label in zip(texts[n:], labels[n:])}
    assert cue_rows and all(s.corpus.drafts_by_id()[d.entry.id].intent == cue_rows[c] for d in s.corpus.drafts for c in d.entry.cues if c in cue_rows)
    assert s.bundle.example_index.ntotal == len(texts) == len(s.bundle.classifier.example_intents)
    cue = next(iter(cue_rows))
    intents, _ = nearest_neighbour(s.corpus, s.bundle.example_index, fake_encoder.encode([cue]))
    nearest_example = max(s.corpus.examples, key=lambda ex: float(fake_encoder.encode([ex.text])[0] @ fake_encoder.encode([cue])[0]))
    assert intents == [nearest_example.intent]


def test_no_draft_head_for_a_single_draft_or_a_many_shop_corpus():
    import numpy as np

    from replybot.index import MAX_DRAFT_HEAD_DRAFTS, fit_draft_head

    vecs = np.eye(4, dtype=np.float32)
    assert fit_draft_head(vecs[:1], [0], 1) is None
    assert fit_draft_head(vecs, [0, 1, 2, 3], MAX_DRAFT_HEAD_DRAFTS + 1) is None
    head = fit_draft_head(vecs, [0, 0, 1, 1], 2)
    assert head is not None and head.classes == ["0", "1"]


def test_demoted_drafts_come_after_all_others_whatever_their_scores():
    from types import SimpleNamespace

    from replybot.rank import diversify

    drafts = [SimpleNamespace(entry=SimpleNamespace(move=m)) for m in ("a", "b", "c", "d")]
    corpus = SimpleNamespace(drafts=drafts)
    scores = {0: 0.95, 1: 0.5, 2: 0.4, 3: 0.9}
    assert [r.position for r in diversify(corpus, scores, 3)] == [0, 3, 1]
    ranked = diversify(corpus, scores, 4, demoted=frozenset({0, 3}))
    assert [r.position for r in ranked] == [1, 2, 0, 3]
    assert ranked[2].score == 0.95  # the shown score is the draft's own, not the demotion



def test_an_edit_encodes_only_the_texts_it_changed(mini_settings, mini_root, tmp_path):
    """The index is trained again after an edit, but the vectors of unchanged texts come from the
    store: the same bundle as a build from nothing, for a fraction of the encoding."""
    from fakes import FakeEncoder, RecordingEncoder
    from test_corpus import edit_yaml

    recording = RecordingEncoder()
    get_bundle(Suggester(mini_settings, encoder=recording).corpus, recording, mini_settings.cache_dir)
    assert len(recording.texts) > 100
    new_example = "我穿39码的鞋子选哪个"
    edit_yaml(mini_root / "intents" / "size.yml", lambda d: d["examples"].append(new_example))
    recording.texts.clear()
    corpus = Suggester(mini_settings, encoder=recording).corpus
    incremental, built = get_bundle(corpus, recording, mini_settings.cache_dir)
    assert built and recording.texts == [new_example]

    fresh, _ = get_bundle(corpus, FakeEncoder(), tmp_path / "fresh-cache")
    a, b = incremental.classifier.intent_head.to_arrays("h"), fresh.classifier.intent_head.to_arrays("h")
    assert a.keys() == b.keys()
    for name in a:
        if a[name].dtype.kind == "U":
            assert (a[name] == b[name]).all()
        else:
            np.testing.assert_allclose(a[name], b[name], atol=1e-5)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_vector_store_is_ignored_and_rewritten(mini_settings, damage):
    from fakes import RecordingEncoder

    from replybot.vectors import VectorStore

    recording = RecordingEncoder()
    corpus = Suggester(mini_settings, encoder=recording).corpus
    get_bundle(corpus, recording, mini_settings.cache_dir)
    store = VectorStore.in_cache(mini_settings.cache_dir, recording.model_id, recording.dim)
    n_texts = len(store.load())
    data = store.path.read_bytes()
    store.path.write_bytes(data[:200] if damage == "truncate" else b"\x00not a zip" * 50)
    assert store.load() == {}
    shutil.rmtree(mini_settings.cache_dir / "index")
    recording.texts.clear()
    get_bundle(corpus, recording, mini_settings.cache_dir)
    assert len(recording.texts) == n_texts  # everything encoded again, once
    assert len(store.load()) == n_texts


def test_vectors_of_another_model_are_not_used(mini_settings, fake_encoder):
    from replybot.vectors import VectorStore

    get_bundle(Suggester(mini_settings, encoder=fake_encoder).corpus, fake_encoder, mini_settings.cache_dir)
    ours = VectorStore.in_cache(mini_settings.cache_dir, fake_encoder.model_id, fake_encoder.dim)
    theirs = VectorStore.in_cache(mini_settings.cache_dir, "another-model", fake_encoder.dim)
    assert ours.load() and ours.path != theirs.path
    theirs.path.write_bytes(ours.path.read_bytes())  # even under its name, the file says whose it is
    assert theirs.load() == {}


def test_a_vector_store_that_cannot_be_written_costs_nothing_but_speed(tmp_path, fake_encoder):
    from replybot.vectors import VectorStore

    blocked = tmp_path / "cache"
    blocked.mkdir()
    (blocked / "vectors").write_text("a file where the folder should be")
    store = VectorStore.in_cache(blocked, fake_encoder.model_id, fake_encoder.dim)
    store.save({"在吗": np.ones(fake_encoder.dim, dtype=np.float32)}, {})
    assert store.load() == {}


def test_prebuilt_vectors_spare_a_fresh_install_the_encoding(mini_settings, tmp_path):
    """A file of the shipped corpus's vectors: a new cache encodes nothing it holds, and a file
    written for another model is not used."""
    from fakes import RecordingEncoder

    from replybot.vectors import VectorStore

    recording = RecordingEncoder()
    corpus = Suggester(mini_settings, encoder=recording).corpus
    get_bundle(corpus, recording, mini_settings.cache_dir)
    prebuilt = tmp_path / "prebuilt" / "vectors.npz"
    prebuilt.parent.mkdir()
    shutil.copy(VectorStore.in_cache(mini_settings.cache_dir, recording.model_id, recording.dim).path, prebuilt)

    recording.texts.clear()
    _, built = get_bundle(corpus, recording, tmp_path / "new-cache", prebuilt=prebuilt)
    assert built and recording.texts == []

    other = RecordingEncoder()
    other.model_id = "another-model"
    get_bundle(corpus, other, tmp_path / "third-cache", prebuilt=prebuilt)
    assert len(other.texts) > 100
