"""Evaluation output: a rich table, and report.json / errors.json / report.md / confusion.png."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from ..taxonomy import BUYER_TYPES, INTENTS
from .metrics import Record

BASELINE_NAMES = {"keyword_rules": "关键词规则", "tfidf_logreg": "TF-IDF+逻辑回归", "nearest_neighbour": "向量1-近邻"}


def _pct(v) -> str:
    return "—" if v is None else f"{v:.1%}"


def _span(summary: dict, figure: str, source: str = "figures") -> str:
    """ "（89.0–94.9）": the figure's 95% interval over resampled dialogues, when there is one."""
    span = summary.get("intervals", {}).get(source, {}).get(figure)
    return "" if not span else f"（{span[0] * 100:.1f}–{span[1] * 100:.1f}）"


def render_table(summary: dict, console) -> None:
    from rich.table import Table

    head = Table(title="replybot 评估结果", caption="括号内为 95% 区间（按对话重抽样）", show_header=True)
    head.add_column("指标")
    head.add_column("数值", justify="right")
    rows = [
        ("标注消息数", str(summary["n_turns"])),
        ("意图准确率（含 also）", _pct(summary["intent_accuracy"]) + _span(summary, "intent_accuracy")),
        ("意图准确率（严格）", _pct(summary["intent_accuracy_strict"]) + _span(summary, "intent_accuracy_strict")),
        ("意图宏平均 F1", f"{summary['intent_macro_f1']:.3f}"),
        ("宏平均 F1（支持数≥5）", f"{summary['intent_macro_f1_support_5']:.3f}"),
        ("买家类型准确率", f"{_pct(summary['buyer_type_accuracy'])}{_span(summary, 'buyer_type_accuracy')}，{summary['n_bargain_turns']} 条议价"),
        ("死缠烂打识别率", _pct(summary.get("pestering_recall"))),
        ("弃权率", _pct(summary["abstain_rate"])),
        ("作答部分准确率", _pct(summary["answered_accuracy"])),
        ("最有把握的 80% 准确率", _pct(summary.get("accuracy_at_80_coverage")) + _span(summary, "accuracy_at_80_coverage")
         + ("" if summary.get("threshold_at_80_coverage") is None else f"，置信度 ≥ {summary['threshold_at_80_coverage']:.2f}")),
        ("话术 hit@1 / hit@3 / MRR", f"{_pct(summary['hit_at_1'])} / {_pct(summary['hit_at_3'])}{_span(summary, 'hit_at_3')} / "
         + ("—" if summary["mrr"] is None else f"{summary['mrr']:.3f}")),
        ("延迟 p50 / p95", f"{summary['latency_ms_p50']:.1f} / {summary['latency_ms_p95']:.1f} ms"),
        ("吞吐", f"{summary['turns_per_s']} 条/秒"),
    ]
    for name, value in rows:
        head.add_row(name, value)
    console.print(head)

    per = Table(title="各意图", show_header=True)
    for col in ("意图", "精确率", "召回率", "F1", "支持数"):
        per.add_column(col, justify="right" if col != "意图" else "left")
    for intent, m in summary["per_intent"].items():
        per.add_row(f"{INTENTS[intent]} {intent}", f"{m['precision']:.2f}", f"{m['recall']:.2f}", f"{m['f1']:.2f}", str(m["support"]))
    console.print(per)

    if "baselines" in summary:
        base = Table(title="与基线对比", show_header=True)
        for col in ("方法", "意图准确率", "宏平均F1", "买家类型", "领先（百分点）"):
            base.add_column(col, justify="right" if col != "方法" else "left", overflow="fold")
        base.add_row("replybot", _pct(summary["intent_accuracy"]), f"{summary['intent_macro_f1']:.3f}", _pct(summary["buyer_type_accuracy"]), "")
        for name, m in summary["baselines"].items():
            lift = f"{summary['lift'][name] * 100:+.1f}{_span(summary, name, 'lift')}"
            base.add_row(BASELINE_NAMES.get(name, name), _pct(m["intent_accuracy"]), f"{m['intent_macro_f1']:.3f}", _pct(m["buyer_type_accuracy"]), lift)
        console.print(base)

    if "changes" in summary:
        render_changes(summary["changes"], console)


CHANGE_LIST_LIMIT = 15  # turns listed per side in the terminal; all of them are in the JSON
FIGURE_NAMES = {
    "intent_accuracy": "意图准确率", "intent_accuracy_strict": "意图准确率（严格）", "intent_macro_f1": "宏平均 F1",
    "buyer_type_accuracy": "买家类型准确率", "accuracy_at_80_coverage": "最有把握的 80%", "hit_at_1": "hit@1",
    "hit_at_3": "hit@3", "mrr": "MRR",
}
SCORES_NOT_SHARES = frozenset({"intent_macro_f1", "mrr"})  # shown as 0.963, not 96.3%
ERROR_KINDS = {"intent": "意图", "buyer_type": "买家类型", "draft": "话术"}


def render_changes(changes: dict, console) -> None:
    """The --against comparison: figure deltas, then the turns that broke and the turns that were fixed."""
    from rich.table import Table

    title = "与上次报告相比" + ("" if changes["same_files"] else "（注意：评估的文件不同）")
    if not changes.get("draft_misses_compared", True):
        title += "（旧报告没有话术未命中的记录，只比较意图和买家类型）"
    figures = Table(title=title, show_header=True)
    for col in ("指标", "之前", "现在", "变化"):
        figures.add_column(col, justify="right" if col != "指标" else "left")
    for name, f in changes["figures"].items():
        if name in SCORES_NOT_SHARES:
            shown = (f"{f['before']:.3f}", f"{f['after']:.3f}", f"{f['change']:+.3f}")
        else:
            shown = (_pct(f["before"]), _pct(f["after"]), f"{f['change'] * 100:+.1f}")
        figures.add_row(FIGURE_NAMES.get(name, name), *shown)
    console.print(figures)
    for key, label in (("newly_wrong", "新错"), ("newly_right", "改对")):
        rows = changes[key]
        console.print(f"{label} {len(rows)} 条" + ("：" if rows else ""))
        for e in rows[:CHANGE_LIST_LIMIT]:
            console.print(f"  [{ERROR_KINDS.get(e['error'], e['error'])}] {e['dialogue_id']}#{e['index']} {e['text'][:40]}  （{_what_went_wrong(e)}）", markup=False, highlight=False)
        if len(rows) > CHANGE_LIST_LIMIT:
            console.print(f"  …… 其余 {len(rows) - CHANGE_LIST_LIMIT} 条见 --json 或报告目录的 report.json")


def _what_went_wrong(e: dict) -> str:
    """gold→predicted for the kind of error: the intent, the buyer type, or where the accepted draft ranked."""
    if e["error"] == "intent":
        return f"{e['gold']}→{e['predicted']}"
    if e["error"] == "buyer_type":
        return f"{e.get('gold_buyer_type')}→{e.get('buyer_type')}"
    return f"采纳话术排第 {e.get('accept_rank') or '10+'} 位"


def errors_of(records: list[Record]) -> list[dict]:
    """Every turn replybot got wrong, with what it takes to see why: `error` is intent, buyer_type
    or draft (the intent and type were right but no accepted draft made the first three);
    `gold_rank` / `gold_confidence` say how close the right intent came, `accept_rank` where the
    first accepted draft ranked (None: not among the ten retrieved); a gold_rank of None means the
    right intent was not among the four replybot listed."""
    out = []
    for r in records:
        draft_miss = bool(r.accept) and not r.hit_at_3
        if r.correct and not r.wrong_type and not draft_miss:
            continue
        d = asdict(r)
        d.pop("baselines", None)
        d["alternatives"] = [{"intent": i, "confidence": c} for i, c in r.alternatives]
        if d["latency_ms"] != d["latency_ms"]:  # not in the timed sample
            d["latency_ms"] = None
        d["error"] = "intent" if not r.correct else "buyer_type" if r.wrong_type else "draft"
        ranking = [(r.predicted, r.confidence), *r.alternatives]
        gold_at = next((k for k, (i, _) in enumerate(ranking, 1) if i == r.gold), None)
        d["gold_rank"] = gold_at
        d["gold_confidence"] = ranking[gold_at - 1][1] if gold_at else None
        d["accept_rank"] = r.accept_rank
        out.append(d)
    return out


def cjk_font() -> str | None:
    """A font that has Chinese glyphs, so the picture shows labels and not boxes."""
    from matplotlib import font_manager

    wanted = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
              "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "AR PL UMing CN")
    names = {f.name for f in font_manager.fontManager.ttflist}
    if not names.intersection(wanted):
        # matplotlib's font cache predates a font installed later (apt-get after the first plot)
        hints = ("wqy", "wenquanyi", "notosanscjk", "notosanssc", "sourcehan", "simhei", "msyh", "pingfang", "stheiti", "uming")
        for path in font_manager.findSystemFonts():
            if any(h in Path(path).name.lower().replace("-", "") for h in hints):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        names = {f.name for f in font_manager.fontManager.ttflist}
    for name in wanted:
        if name in names:
            return name
    return None


def plot_confusion(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = summary["confusion"]["labels"]
    matrix = np.array(summary["confusion"]["matrix"])
    font = cjk_font()
    if font:
        plt.rcParams["font.sans-serif"] = [font]
        names = [f"{INTENTS[l]}\n{l}" for l in labels]
        title, xlabel, ylabel = "意图混淆矩阵（行：标注，列：预测）", "预测", "标注"
    else:  # no CJK font installed: ids only, never boxes
        names = labels
        title, xlabel, ylabel = "Intent confusion (rows: gold, columns: predicted)", "predicted", "gold"
    plt.rcParams["axes.unicode_minus"] = False
    size = max(6.0, 0.75 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    row_sums = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, row_sums, out=np.zeros_like(matrix, dtype=float), where=row_sums > 0)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), names, rotation=45, ha="right", fontsize=9)
    ax.set_yticks(range(len(labels)), names, fontsize=9)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.6 else "black")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}\nn={int(matrix.sum())}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(summary: dict) -> str:
    lines = ["# replybot evaluation", "", f"Files: {', '.join(summary.get('files', []))}", "",
             "| metric | value | 95% interval (resampling dialogues) |", "| --- | --- | --- |"]
    for key in ("n_turns", "intent_accuracy", "intent_accuracy_strict", "intent_macro_f1", "intent_macro_f1_support_5",
                "buyer_type_accuracy", "n_bargain_turns", "pestering_recall", "abstain_rate", "answered_accuracy",
                "accuracy_at_80_coverage", "hit_at_1", "hit_at_3", "mrr", "latency_ms_p50", "latency_ms_p95", "turns_per_s"):
        span = summary.get("intervals", {}).get("figures", {}).get(key)
        lines.append(f"| {key} | {summary.get(key)} |" + (f" {span[0]} – {span[1]} |" if span else " |"))
    lines += ["", "## Per intent", "", "| intent | 中文 | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- | --- |"]
    for intent, m in summary["per_intent"].items():
        lines.append(f"| {intent} | {INTENTS[intent]} | {m['precision']} | {m['recall']} | {m['f1']} | {m['support']} |")
    if summary.get("per_buyer_type_f1"):
        lines += ["", "## Buyer type F1", "", "| type | 中文 | F1 |", "| --- | --- | --- |"]
        for b, f in summary["per_buyer_type_f1"].items():
            lines.append(f"| {b} | {BUYER_TYPES[b]} | {f} |")
    if "baselines" in summary:
        lines += ["", "## Baselines (same turns, same intents/)", "",
                  "| method | intent accuracy | macro-F1 | buyer-type accuracy | replybot lift | lift 95% interval |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines.append(f"| replybot | {summary['intent_accuracy']} | {summary['intent_macro_f1']} | {summary['buyer_type_accuracy']} | | |")
        for name, m in summary["baselines"].items():
            span = summary.get("intervals", {}).get("lift", {}).get(name)
            lines.append(
                f"| {name} | {m['intent_accuracy']} | {m['intent_macro_f1']} | {m['buyer_type_accuracy']} | {summary['lift'][name]:+} | "
                + (f"{span[0]:+} – {span[1]:+} |" if span else "— |")
            )
    breakdown = summary.get("error_breakdown")
    if breakdown:
        lines += ["", "## Where the misses are (details in errors.json)", "",
                  f"- intent errors: {breakdown['intent_errors']}, of which the right intent came second: {breakdown['intent_errors_gold_second']}"]
        if breakdown["hit_at_3_misses"] or summary.get("hit_at_3") is not None:
            lines.append(
                f"- hit@3 misses: {breakdown['hit_at_3_misses']} (wrong intent {breakdown['hit_at_3_misses_wrong_intent']}, "
                f"wrong buyer type {breakdown['hit_at_3_misses_wrong_buyer_type']}, ranking {breakdown['hit_at_3_misses_ranking']}); "
                f"hit@3 where the intent is right: {breakdown['hit_at_3_given_right_intent']}"
            )
    confident = summary.get("confident_errors")
    if confident:
        lines += ["", f"Wrong among the most confident 80% (confidence ≥ {summary['threshold_at_80_coverage']}): "
                  f"{len(confident)}. These alone keep accuracy at 80% coverage below 100%.", "",
                  "| turn | text | gold | predicted | confidence |", "| --- | --- | --- | --- | --- |"]
        for e in confident:
            gold = "/".join([e["gold"], *e["also"]])
            text = _cell(e["text"])
            lines.append(f"| {e['turn']} | {text} | {gold} | {e['predicted']} | {e['confidence']} |")
    changes = summary.get("changes")
    if changes:
        lines += ["", "## Against the earlier report" + ("" if changes["same_files"] else " (different files!)"), "",
                  "| figure | before | after | change |", "| --- | --- | --- | --- |"]
        for name, f in changes["figures"].items():
            lines.append(f"| {name} | {f['before']} | {f['after']} | {f['change']:+} |")
        for key, label in (("newly_wrong", "Newly wrong"), ("newly_right", "Newly right")):
            lines += ["", f"{label}: {len(changes[key])}", ""]
            lines += [f"- {e['error']}: {e['dialogue_id']}#{e['index']} {e['text']} ({_what_went_wrong(e)})" for e in changes[key]]
    lines += ["", "## Coverage / accuracy", "", "| threshold | coverage | accuracy |", "| --- | --- | --- |"]
    for c in summary["coverage_curve"]:
        lines.append(f"| {c['threshold']} | {c['coverage']} | {c['accuracy']} |")
    lines += ["", "![confusion matrix](confusion.png)", ""]
    return "\n".join(lines)


def _cell(text: str, width: int = 40) -> str:
    """A message shortened to one markdown table cell."""
    one_line = " ".join(text.split()).replace("|", "｜")
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def write_report(folder: Path, summary: dict, records: list[Record]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / "errors.json").write_text(json.dumps(errors_of(records), ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / "report.md").write_text(markdown(summary), encoding="utf-8")
    plot_confusion(summary, folder / "confusion.png")
