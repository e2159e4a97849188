"""The clipboard helper on a real X clipboard (Xvfb + xclip) with keys through a pseudo-terminal.

Most helper sessions run `run_clip` on the mini corpus with the fake encoder (a child process
built by DRIVER), so they are fast and do not wait for the model; the real-model sessions run the
installed `replybot clip` command. Pure parts (filter, conversation, pick log) are plain tests.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replybot.clipboard import Conversation, is_buyer_message, looks_like_code
from replybot.picklog import PickLog, pick_record

pexpect = pytest.importorskip("pexpect")
from pexpect import fdpexpect  # noqa: E402

TESTS = Path(__file__).resolve().parent
REPLYBOT = Path(sys.executable).parent / "replybot"
XVFB, XCLIP = shutil.which("Xvfb"), shutil.which("xclip")
needs_x = pytest.mark.skipif(
    not (XVFB and XCLIP), reason="Xvfb and xclip binaries are absent (CI installs them: apt-get install xvfb xclip)"
)
HINT = r"按 1-\d 复制草稿，e 编辑，n 新会话，q 退出"
TIMEOUT = 20

DRIVER = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from fakes import FakeEncoder
from replybot.clipboard import ClipOptions, run_clip
from replybot.config import Settings
from replybot.suggest import Suggester
root = Path(sys.argv[2])
settings = Settings(intents_dir=root / "intents", scripts_dir=root / "scripts_corpus",
                    default_shop=root / "shops" / "default.yml", cache_dir=Path(sys.argv[3]))
sys.exit(run_clip(ClipOptions(**json.loads(sys.argv[4])), Suggester(settings, encoder=FakeEncoder())))
"""


# ---- the pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["能便宜点吗", "这件黑色M码还有吗", "那XL呢", "80一袋吧", "ok", "在吗？？？", "我165穿什么码 (身高)", "收货人张三 13812345678 能改地址吗",
     "好的 :)", "满199减20吗", "  有货吗\n", "能便宜点吗(^_^)", "我要M(偏大)还是L(偏小)", "import 进口的吗",
     "XL(175/96A)有吗", "A&B两款 哪个好"],
)
def test_buyer_messages_pass(text):
    assert is_buyer_message(text) == (True, "")


@pytest.mark.parametrize(
    "text,reason",
    [
        ("", "空白"),
        ("   \n\t", "空白"),
        ("好" * 501, "太长（501 字，买家消息不超过 500 字）"),
        ("能便宜点吗\x00\x01", "含控制字符，像二进制内容"),
        ("abc\ufffd\ufffd", "含控制字符，像二进制内容"),
        ("https://item.taobao.com/item.htm?id=123", "含网址"),
        ("看这个 www.example.com", "含网址"),
        ("【淘宝】m.tb.cn/h.5abc 点击链接", "含网址"),
        ("/home/agent/报价/春季.xlsx", "像文件路径"),
        ("~/Downloads/a.png", "像文件路径"),
        ("C:\\Users\\客服\\Desktop\\话术.docx", "像文件路径"),
        ("def f(x):\n    return x + 1", "像代码"),
        ("import numpy as np", "像代码"),
        ("if (a == b) { c(); }", "像代码"),
        ("const total = price * qty;", "像代码"),
        ("SELECT id FROM orders WHERE buyer = 1", "像代码"),
        ("<div class='x'>你好</div>", "像代码"),
        ("{\"a\": [1, 2], \"b\": {}}", "像代码"),
        ("★★★★★★★★ ☆☆☆", "大部分不是文字"),
        ("------------", "大部分不是文字"),
    ],
)
def test_clipboard_noise_is_refused_with_a_reason(text, reason):
    assert is_buyer_message(text) == (False, reason)


def test_chinese_with_one_bracket_is_not_code():
    assert not looks_like_code("我要M码（平时穿S）可以吗")


def test_conversation_keeps_turns_and_resets_after_a_pause():
    c = Conversation(new_after_s=60)
    first_id = c.id
    c.add_buyer("这件黑色M码还有吗", now=0)
    c.add_agent("亲，M码暂时卖完了哦", now=5)
    assert [(t.role, t.text) for t in c.turns] == [("buyer", "这件黑色M码还有吗"), ("agent", "亲，M码暂时卖完了哦")]
    assert c.last_buyer_text == "这件黑色M码还有吗" and c.buyer_count == 1
    assert not c.expired(now=65)
    assert c.expired(now=65.1)
    c.reset()
    assert c.turns == [] and c.id != first_id and c.last_activity is None
    assert not c.expired(now=10_000)  # an empty conversation never expires


def test_conversation_keeps_the_latest_turns_only():
    c = Conversation()
    for i in range(100):
        c.add_buyer(f"第{i}条", now=i)
    assert len(c.turns) == 24 and c.turns[-1].text == "第99条"


def test_pick_record_masks_message_and_text():
    r = pick_record("c1", "收货人张三 13812345678 能便宜点吗", "bargain", "probing", "d1", 2, "好的张三，已备注 13812345678", True)
    assert r["message"] == "收货人[姓名] [手机号] 能便宜点吗"
    assert "13812345678" not in json.dumps(r, ensure_ascii=False)
    assert r["conversation"] == "c1" and r["draft_id"] == "d1" and r["rank"] == 2 and r["edited"] is True


class RecordingEncoder:
    """FakeEncoder that remembers which texts it was asked to encode."""

    def __init__(self):
        from fakes import FakeEncoder

        self.inner = FakeEncoder()
        self.model_id, self.dim = self.inner.model_id, self.inner.dim
        self.texts: list[str] = []

    def encode(self, texts):
        self.texts += texts
        return self.inner.encode(texts)


class MemoryClipboard:
    name = "memory"

    def __init__(self):
        self.content = ""

    def write(self, text: str) -> None:
        self.content = text

    def read(self) -> str:
        return self.content


def test_picked_reply_is_encoded_before_the_next_message(mini_settings):
    """The agent's reply becomes context of the buyer's next message; the helper encodes it
    right after the pick, so the next suggestion encodes only the new message."""
    from replybot.clipboard import ClipHelper
    from replybot.suggest import Suggester

    encoder = RecordingEncoder()
    lines: list[str] = []
    helper = ClipHelper(Suggester(mini_settings, encoder=encoder), MemoryClipboard(), keys=None, say=lines.append)
    helper.on_clipboard("能便宜点吗")
    helper.pick(1)
    reply = helper.conversation.turns[-1].text
    assert helper.conversation.turns[-1].role == "agent" and reply in encoder.texts
    encoder.texts.clear()
    helper.on_clipboard("那包邮吗")
    assert encoder.texts == ["那包邮吗"]
    assert any("已复制第 1 条" in line for line in lines)


def _append_many(path: str, writer: int, n: int) -> None:
    log = PickLog(Path(path))
    for i in range(n):
        log.append({"writer": writer, "i": i, "text": "亲，" + "包邮" * (i % 50)})


def test_two_concurrent_writers_lose_no_line(tmp_path):
    path = tmp_path / "picks.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), w, 500)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    records = PickLog(path).read()  # every line parses: none torn or interleaved
    assert len(records) == 1000
    for w in (1, 2):
        assert sorted(r["i"] for r in records if r["writer"] == w) == list(range(500))


# ---- a real X clipboard ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def x_display():
    """A private Xvfb; it picks a free display number itself and tells us through -displayfd."""
    if not (XVFB and XCLIP):
        pytest.skip("Xvfb and xclip binaries are absent (CI installs them: apt-get install xvfb xclip)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [XVFB, "-displayfd", str(write_fd), "-nolisten", "tcp", "-screen", "0", "640x480x24"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start")
    yield f":{number}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def x_env(x_display, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "EDITOR", "VISUAL")}
    env.update(
        DISPLAY=x_display,
        REPLYBOT_CACHE_DIR=str(tmp_path / "cache"),
        REPLYBOT_DATA_HOME=str(tmp_path / "data-home"),
        TERM="xterm",
        PYTHONUNBUFFERED="1",
    )
    env.pop("REPLYBOT_DATA_DIR", None)
    set_clip(env, "启动前剪贴板里已有的内容")
    return env


def set_clip(env: dict, data: str | bytes, target: str | None = None) -> None:
    """Copy like an agent does; xclip stays behind to own the selection, so no output pipes."""
    args = [XCLIP, "-selection", "clipboard"] + (["-t", target] if target else [])
    raw = data.encode("utf-8") if isinstance(data, str) else data
    subprocess.run(args, input=raw, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=10)


def get_clip(env: dict) -> str:
    out = subprocess.run([XCLIP, "-selection", "clipboard", "-o"], env=env, capture_output=True, timeout=10)
    return out.stdout.decode("utf-8")


def spawn_helper(env: dict, mini_root: Path, tmp_path: Path, **options) -> pexpect.spawn:
    """run_clip on the mini corpus and fake encoder, in a pseudo-terminal, as a terminal starts it:
    with Ctrl-C delivered. A test run started in the background of a non-interactive shell ignores
    SIGINT, a child inherits that, and Python then leaves it ignored."""
    args = ["-c", DRIVER, str(TESTS), str(mini_root), str(tmp_path / "cache"), json.dumps(options)]
    child = pexpect.spawn(
        sys.executable, args, env=env, encoding="utf-8", timeout=TIMEOUT, dimensions=(50, 200),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    child.expect("已就绪：复制买家消息即可")
    child.expect(HINT)
    return child


def expect_suggestion(child: pexpect.spawn, message: str) -> list[str]:
    """Wait for the block about `message`; return its drafts in the order the keys pick them."""
    child.expect("━━ 买家：" + re.escape(message))
    child.expect(HINT)
    return [m.strip() for m in re.findall(r"^\s+\d\. (.+)$", child.before, re.MULTILINE)]


def no_suggestion_within(child: pexpect.spawn, seconds: float) -> bool:
    return child.expect(["━━ 买家：", pexpect.TIMEOUT], timeout=seconds) == 1


def quit_helper(child: pexpect.spawn) -> int:
    child.send("q")
    child.expect("已退出")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def log_records(tmp_path: Path) -> list[dict]:
    return PickLog(tmp_path / "data-home" / "picks.jsonl").read()


@needs_x
def test_copy_message_then_key_puts_draft_on_clipboard(x_env, mini_root, tmp_path):
    child = spawn_helper(x_env, mini_root, tmp_path)
    assert no_suggestion_within(child, 0.6)  # what was on the clipboard before start is not new
    started = time.monotonic()
    set_clip(x_env, "能便宜点吗")
    drafts = expect_suggestion(child, "能便宜点吗")
    latency = time.monotonic() - started
    print(f"copy → drafts on screen: {latency:.2f} s")
    assert latency < 2.0
    assert "意图:" in child.before and "建议回复:" in child.before and len(drafts) >= 2

    child.send("2")
    child.expect("已复制第 2 条草稿，到聊天窗口粘贴发送")
    assert get_clip(x_env) == drafts[1]
    assert no_suggestion_within(child, 1.0)  # its own write is not a buyer message

    child.send("7")
    child.expect("没有第 7 条草稿")
    assert quit_helper(child) == 0
    assert get_clip(x_env) == drafts[1]  # the draft stays on the clipboard after the helper quits

    [record] = log_records(tmp_path)
    assert record["message"] == "能便宜点吗" and record["rank"] == 2 and record["edited"] is False
    assert record["text"] == drafts[1] and record["intent"]


@needs_x
def test_repeats_and_noise_are_ignored_and_it_keeps_running(x_env, mini_root, tmp_path):
    child = spawn_helper(x_env, mini_root, tmp_path)
    set_clip(x_env, "什么时候发货")
    expect_suggestion(child, "什么时候发货")

    noise = [
        ("https://item.taobao.com/item.htm?id=6618", "含网址"),
        ("def price(x):\n    return x * 0.9\n", "像代码"),
        ("/home/agent/话术/报价单.xlsx", "像文件路径"),
        ("买" * (1024 * 1024), "太长（1048576 字"),
        (bytes(range(256)) * 16, "不是文本（二进制内容）"),
        ("什么时候发货", "和上一条买家消息相同"),
    ]
    for data, reason in noise:
        set_clip(x_env, data)
        child.expect("已忽略剪贴板：" + re.escape(reason))
    set_clip(x_env, b"\x89PNG\r\n\x1a\n" + bytes(64), target="image/png")  # an image: no text at all
    assert no_suggestion_within(child, 0.8)

    burst = [f"第{i}件能便宜吗" for i in range(20)]
    for text in burst:  # faster than the helper polls
        set_clip(x_env, text)
    expect_suggestion(child, burst[-1])
    assert child.isalive()

    set_clip(x_env, "还有货吗")
    expect_suggestion(child, "还有货吗")
    assert quit_helper(child) == 0


@needs_x
def test_conversation_follow_up_new_and_pause(x_env, mini_root, tmp_path):
    child = spawn_helper(x_env, mini_root, tmp_path, new_after_s=2.0)
    set_clip(x_env, "这件黑色M码还有吗")
    expect_suggestion(child, "这件黑色M码还有吗")
    assert "本会话第 1 条" in child.before
    child.send("1")
    child.expect("已复制第 1 条草稿")

    set_clip(x_env, "那XL呢")  # the follow-up is suggested with the earlier turns
    expect_suggestion(child, "那XL呢")
    assert "本会话第 2 条" in child.before
    child.send("2")
    child.expect("已复制第 2 条草稿")

    child.send("n")
    child.expect("已开始新会话")
    set_clip(x_env, "能便宜点吗")
    expect_suggestion(child, "能便宜点吗")
    assert "本会话第 1 条" in child.before
    child.send("1")
    child.expect("已复制第 1 条草稿")

    time.sleep(2.5)  # longer than --new-after
    set_clip(x_env, "发什么快递")
    child.expect("超过 2 秒没有新消息，已开始新会话")
    expect_suggestion(child, "发什么快递")
    assert "本会话第 1 条" in child.before
    child.send("2")
    child.expect("已复制第 2 条草稿")
    assert quit_helper(child) == 0

    records = log_records(tmp_path)
    assert [r["message"] for r in records] == ["这件黑色M码还有吗", "那XL呢", "能便宜点吗", "发什么快递"]
    conversations = [r["conversation"] for r in records]
    assert conversations[0] == conversations[1]
    assert len(set(conversations[1:])) == 3


@needs_x
def test_edit_then_copy_with_line_prompt(x_env, mini_root, tmp_path):
    child = spawn_helper(x_env, mini_root, tmp_path)
    set_clip(x_env, "收货人张三 13812345678 能便宜点吗")
    drafts = expect_suggestion(child, "收货人张三 13812345678 能便宜点吗")
    child.send("e")
    child.expect(r"编辑第几条？按 1-\d")
    child.send("1")
    child.expect("改好后回车")
    child.expect(re.escape(drafts[0]))  # the draft is already typed in
    child.send("，张三 13812345678 已备注\r")
    child.expect("已复制第 1 条草稿（已修改）")
    assert get_clip(x_env) == drafts[0] + "，张三 13812345678 已备注"

    child.send("e")
    child.send("2")
    child.expect("改好后回车")
    # Wait until readline shows the draft, as a person would: a Ctrl-C that lands while readline
    # is still setting up is only noticed by Python once input() returns (pressing Enter).
    child.expect(re.escape(drafts[1]))
    child.sendcontrol("c")  # Ctrl-C in the prompt cancels the edit, not the helper
    child.expect("已取消编辑")
    assert get_clip(x_env) == drafts[0] + "，张三 13812345678 已备注"
    assert quit_helper(child) == 0

    [record] = log_records(tmp_path)
    assert record["edited"] is True
    assert record["message"] == "收货人[姓名] [手机号] 能便宜点吗"
    assert "13812345678" not in (tmp_path / "data-home" / "picks.jsonl").read_text(encoding="utf-8")


@needs_x
def test_edit_with_editor(x_env, mini_root, tmp_path):
    x_env["EDITOR"] = "sed -i s/亲/您好/"
    child = spawn_helper(x_env, mini_root, tmp_path)
    set_clip(x_env, "在吗")
    drafts = expect_suggestion(child, "在吗")
    child.send("e")
    child.send("2")
    child.expect("已复制第 2 条草稿（已修改）")
    assert get_clip(x_env) == drafts[1].replace("亲", "您好", 1)
    assert quit_helper(child) == 0


@needs_x
def test_no_log_writes_nothing(x_env, mini_root, tmp_path):
    child = spawn_helper(x_env, mini_root, tmp_path, log=False)
    set_clip(x_env, "在吗")
    expect_suggestion(child, "在吗")
    child.send("1")
    child.expect("已复制第 1 条草稿")
    assert quit_helper(child) == 0
    assert not (tmp_path / "data-home").exists()


@needs_x
def test_keys_from_a_pipe(x_env, mini_root, tmp_path):
    """Without a terminal, keys are read a line at a time (for scripts)."""
    args = ["-c", DRIVER, str(TESTS), str(mini_root), str(tmp_path / "cache"), "{}"]
    proc = subprocess.Popen([sys.executable, *args], env=x_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, encoding="utf-8")
    child = fdpexpect.fdspawn(proc.stdout, encoding="utf-8", timeout=TIMEOUT)
    child.expect(HINT)
    set_clip(x_env, "有尺码表吗")
    drafts = expect_suggestion(child, "有尺码表吗")
    proc.stdin.write("2\n")
    proc.stdin.flush()
    child.expect("已复制第 2 条草稿")
    assert get_clip(x_env) == drafts[1]
    proc.stdin.write("q\n")
    proc.stdin.flush()
    assert proc.wait(TIMEOUT) == 0


@needs_x
def test_once_prints_suggestions(x_env, mini_root, tmp_path):
    set_clip(x_env, "能便宜点吗")
    args = ["-c", DRIVER, str(TESTS), str(mini_root), str(tmp_path / "cache")]
    text = subprocess.run([sys.executable, *args, json.dumps({"once": True})], env=x_env, capture_output=True, text=True, timeout=60)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("意图:") and "建议回复:" in text.stdout and "  2. " in text.stdout
    out = subprocess.run([sys.executable, *args, json.dumps({"once": True, "as_json": True})], env=x_env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["message"] == "能便宜点吗" and len(data["drafts"]) >= 2
    assert get_clip(x_env) == "能便宜点吗"  # --once only reads


@needs_x
@pytest.mark.parametrize(
    "data,line",
    [("https://detail.tmall.com/item.htm?id=1", "错误: 剪贴板里不是买家消息：含网址\n"),
     (b"\xff\xfe\x00\x01", "错误: 剪贴板里不是买家消息：不是文本（二进制内容）\n")],
)
def test_once_refuses_what_is_not_a_buyer_message(x_env, data, line):
    set_clip(x_env, data)
    done = subprocess.run([str(REPLYBOT), "clip", "--once"], env=x_env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", line)


@needs_x
def test_option_errors(x_env):
    done = subprocess.run([str(REPLYBOT), "clip", "--json"], env=x_env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (2, "错误: --json 只能和 --once 一起用\n")
    done = subprocess.run([str(REPLYBOT), "clip", "-k", "12"], env=x_env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (2, "错误: -k 应在 1 到 9 之间（收到 12）\n")


def test_no_display_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run([str(REPLYBOT), "clip"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == "错误: 找不到剪贴板：没有图形桌面（DISPLAY 和 WAYLAND_DISPLAY 都未设置），请在桌面的终端里运行\n"


@needs_x
def test_no_clipboard_tool_is_one_line(x_env, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dict(x_env, PATH=str(empty))  # no xclip, xsel, wl-copy or klipper on PATH
    for once in ([], ["--once"]):
        done = subprocess.run([str(REPLYBOT), "clip", *once], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert done.stderr == "错误: 找不到剪贴板工具：Linux 请安装 xclip 或 xsel（Wayland 用 wl-clipboard）\n"
        assert done.stdout == ""


# ---- the installed command on the real model ------------------------------------------------------


@needs_x
def test_real_model_session(x_env, use_real_cache):
    x_env["REPLYBOT_CACHE_DIR"] = str(use_real_cache)
    child = pexpect.spawn(str(REPLYBOT), ["clip"], env=x_env, encoding="utf-8", timeout=300, dimensions=(50, 200))
    child.expect("正在加载模型…")
    child.expect("已就绪：复制买家消息即可")
    child.expect(HINT)
    started = time.monotonic()
    set_clip(x_env, "这件外套还能再少点钱不")
    drafts = expect_suggestion(child, "这件外套还能再少点钱不")
    print(f"real model, copy → drafts on screen: {time.monotonic() - started:.2f} s")
    assert "（bargain）" in child.before
    child.send("1")
    child.expect("已复制第 1 条草稿")
    assert get_clip(x_env) == drafts[0]
    set_clip(x_env, "再抹个零头呗")
    expect_suggestion(child, "再抹个零头呗")
    assert "本会话第 2 条" in child.before
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@needs_x
def test_real_model_once_json(x_env, use_real_cache):
    x_env["REPLYBOT_CACHE_DIR"] = str(use_real_cache)
    set_clip(x_env, "今天下单明天能寄出去吗")
    done = subprocess.run([str(REPLYBOT), "clip", "--once", "--json"], env=x_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["intent"] == "shipping" and len(data["drafts"]) == 3
