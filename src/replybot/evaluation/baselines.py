"""The approaches replybot must beat, trained on the same intents/ and run on the same turns.

- keyword rules: the quick phrases (快捷短语) agents keep, matched first-hit in a fixed order;
- TF-IDF: character n-grams with logistic regression, no embeddings;
- 1-NN: the nearest intents/ example by embedding (FAQ retrieval, as common peers do).
"""

from __future__ import annotations

import numpy as np

from ..corpus import Corpus
from ..features import NgramFeaturizer

KEYWORD_RULES: list[tuple[str, tuple[str, ...]]] = [
    ("complaint", ("投诉", "差评", "骗", "态度", "12315", "说法", "举报")),
    ("returns", ("退货", "退款", "换货", "退换", "七天无理由", "7天无理由", "补差价", "价保", "退回", "换一")),
    ("order_change", ("改地址", "修改地址", "改一下", "备注", "取消订单", "拍错", "改电话", "换地址")),
    ("payment", ("付款", "货到付款", "支付", "改价", "付不了", "花呗", "信用卡")),
    ("out_of_stock", ("有货", "没货", "补货", "缺货", "库存", "还有吗", "卖完")),
    ("shipping", ("发货", "快递", "物流", "几天到", "包邮吗", "顺丰", "到货", "送到", "单号")),
    ("size", ("尺码", "码", "多大", "偏大", "偏小", "身高", "体重", "斤")),
    ("colour", ("色差", "颜色", "掉色", "褪色", "染色")),
    ("odour", ("味道", "气味", "异味", "臭", "刺鼻")),
    ("quality", ("质量", "正品", "材质", "面料", "开线", "坏了", "破", "起球")),
    ("bargain", ("便宜", "优惠", "打折", "折扣", "包邮", "送点", "赠品", "贵", "少点", "价格")),
    ("greeting", ("在吗", "你好", "您好", "在不在", "亲在")),
]

TYPE_RULES: list[tuple[str, tuple[str, ...]]] = [
    ("excuse", ("只有", "就剩", "余额", "只剩")),
    ("ultimatum", ("卖不卖", "不卖", "我就拍", "就拍", "走了", "行不行")),
    ("sympathy", ("学生", "没钱", "可怜", "刚工作", "穷")),
    ("comparing", ("别家", "人家", "别的店", "实体店", "比你")),
    ("promising", ("下次", "朋友", "回头", "多买", "两件", "第一次", "介绍")),
    ("assertive", ("太贵", "贵了", "好贵")),
]


def keyword_intent(text: str) -> str:
    for intent, words in KEYWORD_RULES:
        if any(w in text for w in words):
            return intent
    return "other"


def keyword_buyer_type(text: str) -> str:
    for buyer_type, words in TYPE_RULES:
        if any(w in text for w in words):
            return buyer_type
    return "probing"


class TfidfBaseline:
    """Character n-gram TF-IDF with logistic regression, on message text only."""

    def fit(self, corpus: Corpus) -> TfidfBaseline:
        from sklearn.linear_model import LogisticRegression

        texts = [ex.text for ex in corpus.examples]
        self.featurizer_ = NgramFeaturizer().fit(texts)
        self.intent_model_ = LogisticRegression(C=20.0, max_iter=3000).fit(
            self.featurizer_.transform(texts), [ex.intent for ex in corpus.examples]
        )
        typed = [ex for ex in corpus.examples if ex.buyer_type and ex.buyer_type != "pestering"]
        self.type_model_ = LogisticRegression(C=20.0, max_iter=3000).fit(
            self.featurizer_.transform([ex.text for ex in typed]), [ex.buyer_type for ex in typed]
        )
        return self

    def predict(self, texts: list[str]) -> tuple[list[str], list[str]]:
        X = self.featurizer_.transform(texts)
        return list(self.intent_model_.predict(X)), list(self.type_model_.predict(X))


def nearest_neighbour(corpus: Corpus, example_index, vectors: np.ndarray) -> tuple[list[str], list[str | None]]:
    """Label of the single closest intents/ example for each vector (the index's first rows;
    the cues after them are replybot's, not the baseline's)."""
    import faiss

    only_examples = faiss.SearchParameters(sel=faiss.IDSelectorRange(0, len(corpus.examples)))
    _, ids = example_index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1, params=only_examples)
    intents, types = [], []
    for row in ids:
        ex = corpus.examples[int(row[0])]
        intents.append(ex.intent)
        types.append(ex.buyer_type)
    return intents, types
