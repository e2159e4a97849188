"""Score every labelled buyer turn through the same Suggester the CLI uses."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..suggest import Suggester
from . import metrics
from .baselines import TfidfBaseline, keyword_buyer_type, keyword_intent, nearest_neighbour
from .dataset import EvalTurn, load_dialogues
from .metrics import Record
from .uncertainty import intervals

EVAL_K = 10  # drafts requested per turn: the first 3 are what an agent sees, the rest feed MRR


SCORE_BATCH = 256  # turns encoded together: the model runs far faster on batches
LATENCY_SAMPLE = 200  # turns timed one at a time, in dialogue order, as the clip helper sees them


def score_turns(
    suggester: Suggester, turns: list[EvalTurn], on_turn: Callable[[int], None] | None = None
) -> tuple[list[Record], float]:
    """Score every turn in batches; returns the records and the wall time of the batched run."""
    records: list[Record] = []
    started = time.perf_counter()
    for start in range(0, len(turns), SCORE_BATCH):
        chunk = turns[start : start + SCORE_BATCH]
        suggestions = suggester.suggest_many([(t.text, t.context) for t in chunk], EVAL_K)
        for t, suggestion in zip(chunk, suggestions):
            records.append(_record(t, suggestion))
        if on_turn:
            on_turn(len(records))
    wall = time.perf_counter() - started
    for r, ms in zip(records, warm_latencies(suggester, turns[:LATENCY_SAMPLE])):
        r.latency_ms = ms
    return records, wall


def warm_latencies(suggester: Suggester, turns: list[EvalTurn]) -> list[float]:
    """Milliseconds per turn through suggest(), one call per turn, with the model loaded, on the
    cores the clip helper would use (see cores.QueryThreads), as a running helper meets a new
    buyer message: its earlier turns were encoded when they arrived (buyer messages) or when
    the agent picked them (replies, see ClipHelper._encode_ahead), untimed; the message itself
    is new and encoded in the timed call."""
    from ..cores import QueryThreads

    suggester.forget_seen_texts()
    threads = QueryThreads()
    out = []
    if turns:
        suggester.suggest("亲 在吗", (), EVAL_K)  # warm-up outside the figures
        threads.wait_for_first_window()
    for t in turns:
        with threads.limit(suggester.encoder):
            suggester.remember([c.text for c in t.context])
            t0 = time.perf_counter()
            suggester.suggest(t.text, t.context, EVAL_K)
            out.append((time.perf_counter() - t0) * 1000)
    return out


def _record(t: EvalTurn, suggestion) -> Record:
    top = suggestion.alternatives[0].intent if suggestion.abstained and suggestion.alternatives else suggestion.intent
    return Record(
        dialogue_id=t.dialogue_id,
        index=t.index,
        text=t.text,
        context=[c.model_dump() for c in t.context],
        gold=t.intent,
        also=list(t.also),
        gold_buyer_type=t.buyer_type,
        accept=list(t.accept),
        predicted=suggestion.intent,
        confidence=suggestion.intent_confidence,
        abstained=suggestion.abstained,
        top_intent=top,
        buyer_type=suggestion.buyer_type,
        draft_ids=[d.id for d in suggestion.drafts],
        latency_ms=float("nan"),
        alternatives=[(a.intent, a.confidence) for a in suggestion.alternatives],
    )


def run_baselines(suggester: Suggester, records: list[Record]) -> None:
    texts = [r.text for r in records]
    tfidf = TfidfBaseline().fit(suggester.corpus)
    tf_intents, tf_types = tfidf.predict(texts)
    vecs = suggester.encoder.encode(texts)
    nn_intents, nn_types = nearest_neighbour(suggester.corpus, suggester.bundle.example_index, vecs)
    for k, r in enumerate(records):
        r.baselines = {
            "keyword_rules": {"intent": keyword_intent(r.text), "buyer_type": keyword_buyer_type(r.text)},
            "tfidf_logreg": {"intent": tf_intents[k], "buyer_type": tf_types[k]},
            "nearest_neighbour": {"intent": nn_intents[k], "buyer_type": nn_types[k]},
        }


def summarize(records: list[Record], wall_s: float, with_baselines: bool) -> dict:
    golds = [r.gold for r in records]
    alsos = [r.also for r in records]
    preds = [r.predicted for r in records]
    summary = metrics.intent_metrics(golds, alsos, preds, min_support=5)
    summary |= metrics.buyer_type_metrics(records)
    summary |= metrics.abstention_metrics(records)
    summary["confident_errors"] = metrics.confident_errors(records, summary["threshold_at_80_coverage"])
    summary |= metrics.draft_metrics(records)
    summary["error_breakdown"] = metrics.error_breakdown(records)
    summary |= metrics.speed_metrics([r.latency_ms for r in records], wall_s)
    labels, matrix = metrics.confusion(golds, alsos, preds)
    summary["confusion"] = {"labels": labels, "matrix": matrix}
    if with_baselines:
        summary["baselines"] = {name: metrics.baseline_metrics(records, name) for name in records[0].baselines}
        summary["lift"] = {
            name: round(summary["intent_accuracy"] - b["intent_accuracy"], 4) for name, b in summary["baselines"].items()
        }
    summary["intervals"] = intervals(records, list(summary.get("baselines", {})))
    return summary


def evaluate(
    files: list[Path],
    suggester: Suggester | None = None,
    with_baselines: bool = True,
    on_turn: Callable[[int], None] | None = None,
    turns: list[EvalTurn] | None = None,
) -> tuple[dict, list[Record]]:
    """Load, score and summarize; silent (the CLI does the printing)."""
    suggester = suggester or Suggester()
    if turns is None:
        turns = load_dialogues(files, {d.id for d in suggester.corpus.drafts})
    records, wall = score_turns(suggester, turns, on_turn)
    if with_baselines:
        run_baselines(suggester, records)
    summary = metrics_summary = summarize(records, wall, with_baselines)
    metrics_summary["files"] = [str(f) for f in files]
    return summary, records


def evaluate_cli_run(
    files: list[Path],
    as_json: bool,
    report_dir: Path | None,
    shop: Path | None,
    with_baselines: bool,
    against: Path | None = None,
) -> None:
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..cli import progress_printer
    from .compare import changes, load_report
    from .report import errors_of, render_table, write_report

    previous = load_report(against) if against is not None else None  # before anything is scored (or overwritten)
    suggester = Suggester(shop_path=shop, progress=progress_printer())
    turns = load_dialogues(files, {d.id for d in suggester.corpus.drafts})
    suggester.bundle  # build before the bar starts
    console = Console(stderr=True)
    with Progress(TextColumn("评估中"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("eval", total=len(turns))
        summary, records = evaluate(files, suggester, with_baselines, lambda n: bar.update(task, completed=n), turns)
    if previous is not None:
        summary["changes"] = changes(previous, summary, errors_of(records))
    if report_dir is not None:
        write_report(report_dir, summary, records)
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        render_table(summary, Console())
        if report_dir is not None:
            Console().print(f"报告已写入 {report_dir}/（report.md、report.json、errors.json、confusion.png）")
