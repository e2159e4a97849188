"""Typer CLI: arguments → one library call → rendered output; the one error boundary."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, Optional

import typer

from .errors import InputError, ReplybotError

app = typer.Typer(
    help="replybot：电商客服回复建议。读买家消息，判断意图和买家类型，给出可直接发送的回复草稿和店铺政策提示。",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def handle_errors(func: Callable) -> Callable:
    """Print a ReplybotError as `错误: ...` lines on stderr and exit non-zero, no traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ReplybotError as exc:
            for line in str(exc).splitlines() or [type(exc).__name__]:
                typer.echo(f"错误: {line}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("已中断", err=True)
            raise typer.Exit(130) from None

    return wrapper


def progress_printer() -> Callable[[str, float], None]:
    """Show first-run work (model conversion, index build) as a progress line on stderr."""
    from rich.console import Console

    console = Console(stderr=True)
    state: dict[str, object] = {"label": None}

    def report(label: str, fraction: float) -> None:
        if label != state["label"]:
            state["label"] = label
            console.print(f"[dim]{label}…[/dim]")
        if fraction >= 1.0 and label == "完成":
            console.print("[dim]准备完成[/dim]")

    return report


def one_math_thread() -> None:
    """One query's matrices are too small to share between cores, and idle BLAS/OpenMP threads
    spin: on a busy 2-core machine they made one suggestion take 2.4 s instead of 0.56 s
    (measured). Must run before numpy is imported; index building raises the limit again."""
    import os

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def read_message(message: str) -> str:
    if message != "-":
        return message
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("标准输入不是有效的 UTF-8 文本") from None


def parse_turn(spec: str):
    from .schemas import Turn

    role, sep, text = spec.partition(":")
    roles = {"buyer": "buyer", "买家": "buyer", "agent": "agent", "客服": "agent"}
    if not sep or role.strip() not in roles:
        raise InputError(f'--turn 格式应为 buyer:文本 或 agent:文本（收到 "{spec}"）')
    if not text.strip():
        raise InputError(f'--turn 的内容为空（"{spec}"）')
    return Turn(role=roles[role.strip()], text=text.strip())


@app.command("suggest")
@handle_errors
def suggest_cli(
    message: str = typer.Argument(..., help="买家的最新消息；写 - 从标准输入读取"),
    turn: list[str] = typer.Option([], "--turn", "-t", help="前文的一轮对话，格式 buyer:文本 或 agent:文本，按时间顺序可重复"),
    context: Optional[Path] = typer.Option(None, "--context", "-c", help="前文对话的 JSON 文件（turns 列表）"),
    shop: Optional[Path] = typer.Option(None, "--shop", help="你的店铺政策 YAML，覆盖默认店铺的取值"),
    k: int = typer.Option(3, "-k", help="给出几条回复草稿"),
    price: Optional[float] = typer.Option(None, "--price", help="议价时：商品标价（单价，元）"),
    qty: Optional[int] = typer.Option(None, "--qty", help="议价时：购买件数"),
    order_total: Optional[float] = typer.Option(None, "--order-total", help="议价时：订单总额（元），优先于 标价×件数"),
    as_json: bool = typer.Option(False, "--json", help="输出一个 JSON 对象，供程序使用"),
) -> None:
    """给一条买家消息出主意：意图、买家类型、置信度、排好序的回复草稿和政策提示。"""
    one_math_thread()
    from .context import load_context
    from .render import to_json, to_text
    from .suggest import Suggester

    text = read_message(message)
    turns = (load_context(context) if context else []) + [parse_turn(t) for t in turn]
    suggester = Suggester(shop_path=shop, progress=progress_printer())
    result = suggester.suggest(text, turns, k, price=price, qty=qty, order_total=order_total)
    typer.echo(to_json(result) if as_json else to_text(result))


@app.command("validate")
@handle_errors
def validate_cli(
    shop: Optional[Path] = typer.Option(None, "--shop", help="同时检查这个店铺政策文件"),
) -> None:
    """检查 intents/、scripts_corpus/ 和店铺政策：每个问题一行（文件:行: 字段: 问题）。"""
    from .config import Settings
    from .corpus import load_corpus

    s = Settings()
    corpus = load_corpus(s.intents_dir, s.scripts_dir, s.default_shop, shop)
    typer.echo(
        f"全部通过：{len(corpus.intents)} 个意图，{len(corpus.examples)} 条例句，{len(corpus.drafts)} 条话术，"
        f"{len(corpus.shop.notes)} 条政策提示"
    )


@app.command("prepare")
@handle_errors
def prepare_cli(
    write_prebuilt: bool = typer.Option(
        False, "--write-prebuilt", help="维护者用：把语料的向量写进 prebuilt/vectors.npz，让新安装的首次运行免去编码"
    ),
) -> None:
    """提前准备模型和索引（首次运行会自动进行）。"""
    from .suggest import Suggester

    suggester = Suggester(progress=progress_printer())
    bundle = suggester.bundle
    state = "已重建" if suggester.index_built else "已是最新"
    typer.echo(f"模型和索引{state}：{bundle.stats['n_examples']} 条例句，{bundle.stats['n_drafts']} 条话术")
    if write_prebuilt:
        path = suggester.write_prebuilt_vectors()
        typer.echo(f"已写入语料向量：{path}")
    layers = getattr(suggester.encoder, "describe_layers", None)
    if layers is not None:
        typer.echo(layers())


@app.command("eval")
@handle_errors
def eval_cli(
    files: list[Path] = typer.Argument(..., help="带标注的对话文件（JSON Lines，格式见 taxonomy.md）"),
    as_json: bool = typer.Option(False, "--json", help="输出一个 JSON 对象"),
    report: Optional[Path] = typer.Option(None, "--report", help="把 report.json、errors.json、report.md 和混淆矩阵图写到这个目录"),
    shop: Optional[Path] = typer.Option(None, "--shop", help="店铺政策 YAML"),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="同时跑基线方法作对比"),
    against: Optional[Path] = typer.Option(None, "--against", help="与之前 --report 写出的目录比较：各项指标的变化，以及新错和改对的消息"),
) -> None:
    """离线评估：对每条标注的买家消息（带前文）打分，和基线方法对比。"""
    from .evaluation.runner import evaluate_cli_run

    evaluate_cli_run(files, as_json=as_json, report_dir=report, shop=shop, with_baselines=baselines, against=against)


@app.command("clip")
@handle_errors
def clip_cli(
    once: bool = typer.Option(False, "--once", help="只读一次剪贴板，输出建议后退出"),
    as_json: bool = typer.Option(False, "--json", help="与 --once 一起用：输出 JSON"),
    shop: Optional[Path] = typer.Option(None, "--shop", help="店铺政策 YAML"),
    k: int = typer.Option(3, "-k", help="给出几条回复草稿（1-9）"),
    new_after: float = typer.Option(600.0, "--new-after", help="停顿超过这么多秒就算新会话"),
    log: bool = typer.Option(True, "--log/--no-log", help="在用户数据目录记录客服选了哪条草稿（已脱敏）"),
) -> None:
    """剪贴板助手：复制买家消息即出建议；按 1-9 复制草稿，e 编辑后复制，n 新会话，q 退出。"""
    one_math_thread()
    from .clipboard import ClipOptions, run_clip

    raise typer.Exit(run_clip(ClipOptions(once=once, as_json=as_json, shop=shop, k=k, new_after_s=new_after, log=log)))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
