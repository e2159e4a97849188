"""`replybot clip`: the helper beside the agent's chat window, with the system clipboard as the bridge.

Agents answer in 千牛, 京麦 or 抖店, which replybot cannot touch. The helper watches the clipboard;
when the agent copies a buyer message it shows drafts, and a key press puts one back on the
clipboard. It never pastes or sends anything itself. Pure parts (`is_buyer_message`,
`Conversation`) are apart from the I/O (`ClipboardBackend`, the key readers, `watch`).
"""

from __future__ import annotations

import os
import platform
import re
import signal
import sys
import time
import uuid
from collections import deque
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

from .cores import QueryThreads
from .errors import ClipboardError, InputError, ReplybotError
from .schemas import Turn

if TYPE_CHECKING:
    from .picklog import PickLog
    from .schemas import Suggestion
    from .suggest import Suggester

POLL_S = 0.15
SETTLE_S = 0.1  # a change must hold this long, so a burst of copies yields one suggestion, not twenty
MAX_MESSAGE_CHARS = 500
MAX_TURNS = 24
MAX_DRAFT_KEYS = 9


@dataclass(frozen=True)
class ClipOptions:
    """What `replybot clip` was asked to do."""

    once: bool = False
    as_json: bool = False
    shop: Path | None = None
    k: int = 3
    new_after_s: float = 600.0
    log: bool = True
    log_path: Path | None = None  # default: data_dir()/picks.jsonl
    poll_s: float = POLL_S


# ---- what counts as a buyer message --------------------------------------------------------------

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAS_HAN = re.compile(f"[{_HAN}]")
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd\ud800-\udfff]")
_URL = re.compile(
    r"(?i)\b(?:https?|ftp|file)://|\bwww\.[a-z0-9-]+\.[a-z]"
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|cn|net|org|io|cc|tv|me|html?)(?:/|\b(?![.-]))"
)
_PATH_LINE = re.compile(r"^(?:~|\.{1,2})?(?:/[^/\s]+)+/?$|^[A-Za-z]:[\\/]\S*|^\\\\[^\\\s]+\\")
_CODE_LINE = re.compile(
    r"^\s*(?:def [A-Za-z_]|class [A-Za-z_]|import [A-Za-z_]|from [A-Za-z_][\w.]* import |#include|#!/|function\b|"
    r"(?:var|let|const) [A-Za-z_$]|public |private |return\b|(?:if|for|while)\s*\(|select .+ from |<\?php|<!doctype|"
    r"<html|package [a-z]|fn [a-z_]|func [A-Za-z_]|\$ [a-z])",
    re.IGNORECASE | re.MULTILINE,
)
# Calls need an ASCII name of two or more letters and no Chinese inside: "M(偏大)" is a size, not code.
_CODE_TOKEN = re.compile(
    r"[{};]\s*$|=>|[=!]==?|&&|\|\||::|->|\b[A-Za-z_][A-Za-z0-9_.]+\([^()\u3400-\u9fff]*\)|</?[a-zA-Z][\w-]*[^>]*>",
    re.MULTILINE,
)
_CODE_SYMBOLS = set("{}[]()<>;=$#\\|&*^`~_")
_TEXT_CHAR = re.compile(f"[{_HAN}A-Za-z0-9\u3000-\u303f\uff00-\uffef，。！？、：；“”‘’…·]")


def is_buyer_message(text: str) -> tuple[bool, str]:
    """Whether clipboard text can be a buyer's chat message, and if not, why (shown to the agent)."""
    stripped = text.strip()
    if not stripped:
        return False, "空白"
    if len(stripped) > MAX_MESSAGE_CHARS:
        return False, f"太长（{len(stripped)} 字，买家消息不超过 {MAX_MESSAGE_CHARS} 字）"
    if _BINARY.search(stripped):
        return False, "含控制字符，像二进制内容"
    if _URL.search(stripped):
        return False, "含网址"
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    if all(_PATH_LINE.match(line) for line in lines):
        return False, "像文件路径"
    if looks_like_code(stripped):
        return False, "像代码"
    visible = [c for c in stripped if not c.isspace()]
    if sum(1 for c in visible if _TEXT_CHAR.match(c)) < len(visible) / 2:
        return False, "大部分不是文字"
    return True, ""


def looks_like_code(text: str) -> bool:
    """Code keywords at a line start, two code tokens, or (without Chinese) dense ASCII symbols."""
    if _CODE_LINE.search(text):
        return True
    if len(_CODE_TOKEN.findall(text)) >= 2:
        return True
    if _HAS_HAN.search(text):
        return False
    visible = [c for c in text if not c.isspace()]
    return len(visible) >= 4 and sum(c in _CODE_SYMBOLS for c in visible) / len(visible) > 0.15


# ---- the conversation ------------------------------------------------------------------------------


def new_conversation_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Conversation:
    """The buyer messages seen and the drafts copied, as the earlier turns of the next suggestion."""

    new_after_s: float = 600.0
    id: str = field(default_factory=new_conversation_id)
    turns: list[Turn] = field(default_factory=list)
    last_activity: float | None = None

    def expired(self, now: float) -> bool:
        """A pause longer than new_after_s means the next message starts a new conversation."""
        return self.last_activity is not None and now - self.last_activity > self.new_after_s

    def reset(self) -> None:
        self.id = new_conversation_id()
        self.turns = []
        self.last_activity = None

    def add_buyer(self, text: str, now: float) -> None:
        self._add(Turn(role="buyer", text=text), now)

    def add_agent(self, text: str, now: float) -> None:
        self._add(Turn(role="agent", text=text), now)

    def _add(self, turn: Turn, now: float) -> None:
        self.turns = (self.turns + [turn])[-MAX_TURNS:]
        self.last_activity = now

    @property
    def last_buyer_text(self) -> str | None:
        return next((t.text for t in reversed(self.turns) if t.role == "buyer"), None)

    @property
    def buyer_count(self) -> int:
        return sum(t.role == "buyer" for t in self.turns)


# ---- the system clipboard --------------------------------------------------------------------------


@dataclass(frozen=True)
class Unreadable:
    """Clipboard content that is not text (an image, binary bytes) or could not be read."""

    reason: str



def missing_backend_message() -> str:
    """One line that says what to install (or why installing would not help)."""
    system = platform.system()
    if system == "Linux":
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return "找不到剪贴板：没有图形桌面（DISPLAY 和 WAYLAND_DISPLAY 都未设置），请在桌面的终端里运行"
        if os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY"):
            return "找不到剪贴板工具：Wayland 请安装 wl-clipboard（提供 wl-copy 和 wl-paste）"
        return "找不到剪贴板工具：Linux 请安装 xclip 或 xsel（Wayland 用 wl-clipboard）"
    return f"找不到剪贴板工具（{system}）：请安装 xclip、xsel 或 wl-clipboard"


_TERMINAL_SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTSTP")


@contextmanager
def _detached_from_terminal() -> Iterator[None]:
    """X11 copy tools leave a child behind to serve the selection; keep it off our terminal.

    The child shares our terminal and process group: it would hold the terminal open after we
    quit, and Ctrl-C, Ctrl-Z or closing the window would reach it and take the copied draft with
    it. So it gets /dev/null for output and inherits "ignore" for the terminal's signals.
    """
    if os.name != "posix":
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    old_handlers = {name: signal.signal(getattr(signal, name), signal.SIG_IGN) for name in _TERMINAL_SIGNALS}
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for name, handler in old_handlers.items():
            signal.signal(getattr(signal, name), handler)
        for fd in saved + [devnull]:
            os.close(fd)


class ClipboardBackend:
    """pyperclip's copy and paste for this machine, held here instead of in pyperclip's module globals."""

    def __init__(self, copy: Callable[[str], None], paste: Callable[[], str]):
        self._copy = copy
        self._paste = paste

    @classmethod
    def detect(cls) -> ClipboardBackend:
        import pyperclip

        try:
            copy, paste = pyperclip.determine_clipboard()
        except Exception as exc:  # pyperclip probes platform libraries; any failure means no clipboard
            raise ClipboardError(f"{missing_backend_message()}（{exc}）") from None
        if not copy or not paste:  # pyperclip's stand-in for "none found" is falsy
            raise ClipboardError(missing_backend_message())
        return cls(copy, paste)

    @property
    def name(self) -> str:
        return getattr(self._paste, "__name__", "clipboard").removeprefix("paste_")

    def read(self) -> str | Unreadable:
        """The clipboard text; never raises, since the watch loop must survive whatever was copied."""
        try:
            text = self._paste()
        except UnicodeDecodeError:
            return Unreadable("不是文本（二进制内容）")
        except Exception as exc:  # PyperclipException, OSError from a vanished tool, Windows errors
            return Unreadable(f"读取失败：{exc}")
        return text if isinstance(text, str) else Unreadable("不是文本")

    def write(self, text: str, confirm_s: float = 1.0) -> None:
        """Copy, then read back until it shows: xclip's child may take the selection a moment later."""
        try:
            with _detached_from_terminal():
                self._copy(text)
        except Exception as exc:
            raise ClipboardError(f"写入剪贴板失败：{exc}") from None
        deadline = time.monotonic() + confirm_s
        while not _same_text(self.read(), text):
            if time.monotonic() > deadline:
                raise ClipboardError("写入剪贴板后读回的内容不一致，请重试")
            time.sleep(0.02)


def _same_text(content: str | Unreadable, text: str) -> bool:
    """Equal up to line endings and surrounding blanks, which some platforms rewrite."""
    return isinstance(content, str) and content.replace("\r\n", "\n").strip() == text.replace("\r\n", "\n").strip()


# ---- keys --------------------------------------------------------------------------------------


class Keys(Protocol):
    """What the helper needs from a key source: presses without blocking, a line, a pause."""

    def poll(self, timeout: float) -> list[str]: ...

    def read_line(self, prompt: str, initial: str) -> str | None: ...

    def suspended(self) -> AbstractContextManager[None]: ...


class TerminalKeys:
    """Single key presses from a terminal in cbreak mode; the terminal is restored on exit."""

    def __init__(self, fd: int):
        self.fd = fd
        self._saved: list | None = None

    def __enter__(self) -> TerminalKeys:
        import termios
        import tty

        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _restore(self) -> None:
        import termios

        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def poll(self, timeout: float) -> list[str]:
        import select

        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        data = os.read(self.fd, 1024)
        return list(data.decode("utf-8", errors="ignore")) if data else ["\x04"]

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """Cooked mode for a line prompt or an editor, cbreak again afterwards."""
        import tty

        self._restore()
        try:
            yield
        finally:
            tty.setcbreak(self.fd)

    def read_line(self, prompt: str, initial: str) -> str | None:
        """A line prompt with the draft already typed in, so the agent edits rather than retypes."""
        try:
            import readline
        except ImportError:  # pragma: no cover - Python built without readline
            readline = None
        with self.suspended():
            if readline is not None:
                readline.set_startup_hook(lambda: readline.insert_text(initial))
            else:
                print(f"原文：{initial}", flush=True)
            try:
                line = input(prompt)
            except (EOFError, KeyboardInterrupt):
                print(flush=True)
                return None
            finally:
                if readline is not None:
                    readline.set_startup_hook(None)
        return line if readline is not None or line.strip() else initial


class LineKeys:
    """Keys from a pipe or file, one command a line ("2", "e2", "q"), for scripts and tests."""

    def __init__(self, fd: int):
        self.fd = fd
        self._buffer = b""
        self.closed = False

    def __enter__(self) -> LineKeys:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _fill(self, timeout: float) -> None:
        import select

        if self.closed:
            time.sleep(timeout)
            return
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            data = os.read(self.fd, 4096)
            self._buffer += data
            self.closed = not data

    def _next_line(self) -> str | None:
        if b"\n" not in self._buffer:
            if not self.closed or not self._buffer:
                return None
            self._buffer += b"\n"
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode("utf-8", errors="ignore").strip()

    def poll(self, timeout: float) -> list[str]:
        self._fill(timeout)
        keys: list[str] = []
        while (line := self._next_line()) is not None:
            keys += list(line)
        return keys

    @contextmanager
    def suspended(self) -> Iterator[None]:
        yield

    def read_line(self, prompt: str, initial: str) -> str | None:
        print(f"原文：{initial}\n{prompt}", flush=True)
        while (line := self._next_line()) is None:
            if self.closed:
                return None
            self._fill(1.0)
        return line or initial


class WindowsKeys:  # pragma: no cover - exercised on Windows only
    """Key presses from the Windows console."""

    def __enter__(self) -> WindowsKeys:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def poll(self, timeout: float) -> list[str]:
        import msvcrt

        deadline = time.monotonic() + timeout
        keys: list[str] = []
        while time.monotonic() < deadline and not keys:
            while msvcrt.kbhit():
                keys.append(msvcrt.getwch())
            if not keys:
                time.sleep(0.02)
        return keys

    @contextmanager
    def suspended(self) -> Iterator[None]:
        yield

    def read_line(self, prompt: str, initial: str) -> str | None:
        print(f"原文：{initial}", flush=True)
        try:
            line = input(prompt)
        except (EOFError, KeyboardInterrupt):
            return None
        return line or initial


def open_keys(stream=None) -> TerminalKeys | LineKeys | WindowsKeys:
    """The key reader that fits stdin: a terminal, a Windows console, or a pipe."""
    stream = stream or sys.stdin
    if os.name == "nt":
        return WindowsKeys()
    fd = stream.fileno()
    return TerminalKeys(fd) if os.isatty(fd) else LineKeys(fd)


def edit_with_editor(initial: str, keys: Keys) -> str | None:
    """$EDITOR on a temporary file holding the draft; None if it fails or leaves nothing."""
    import shlex
    import subprocess
    import tempfile

    editor = os.environ.get("EDITOR", "")
    with tempfile.TemporaryDirectory(prefix="replybot-") as tmp:
        path = Path(tmp) / "draft.txt"
        path.write_text(initial + "\n", encoding="utf-8")
        with keys.suspended():
            try:
                done = subprocess.run(shlex.split(editor) + [str(path)])
            except (OSError, ValueError):
                return None
        if done.returncode != 0:
            return None
        return path.read_text(encoding="utf-8", errors="replace").strip() or None


# ---- the helper ------------------------------------------------------------------------------------

KEY_HINT = "按 1-{n} 复制草稿，e 编辑，n 新会话，q 退出"
READY = "已就绪：复制买家消息即可"


@dataclass
class Shown:
    """The suggestion on screen: what the number keys pick from."""

    message: str
    suggestion: Suggestion
    conversation: str


class ClipHelper:
    """Clipboard changes and key presses in, lines out; the loop around it does the waiting."""

    def __init__(
        self,
        suggester: Suggester,
        clipboard: ClipboardBackend,
        keys: Keys,
        k: int = 3,
        new_after_s: float = 600.0,
        log: PickLog | None = None,
        say: Callable[[str], None] = lambda line: print(line, flush=True),
        clock: Callable[[], float] = time.monotonic,
        threads: QueryThreads | None = None,
    ):
        self.suggester = suggester
        self.threads = threads or QueryThreads()
        self.clipboard = clipboard
        self.keys = keys
        self.k = k
        self.conversation = Conversation(new_after_s)
        self.log = log
        self.say = say
        self.clock = clock
        self.shown: Shown | None = None
        self.own_writes: deque[str] = deque(maxlen=64)
        self.editing = False
        self._log_failed = False

    # clipboard -----------------------------------------------------------------------------

    def on_clipboard(self, content: str | Unreadable) -> None:
        if isinstance(content, Unreadable):
            self.say(f"· 已忽略剪贴板：{content.reason}")
            return
        text = content.strip()
        if not text or text in self.own_writes:
            return
        if self.shown and text in [d.text for d in self.shown.suggestion.drafts]:
            n = [d.text for d in self.shown.suggestion.drafts].index(text) + 1
            self._record(n, text, copied=True)  # copied straight from the terminal: a pick all the same
            return
        ok, reason = is_buyer_message(text)
        if not ok:
            self.say(f"· 已忽略剪贴板：{reason}")
            return
        now = self.clock()
        if self.conversation.expired(now):
            self.conversation.reset()
            self.shown = None
            self.say(f"· 超过 {self.conversation.new_after_s:g} 秒没有新消息，已开始新会话")
        if text == self.conversation.last_buyer_text:
            self.say("· 已忽略剪贴板：和上一条买家消息相同（按 n 开始新会话）")
            return
        self.suggest(text, now)

    def suggest(self, text: str, now: float) -> None:
        from .render import to_text

        started = time.perf_counter()
        try:
            with self.threads.limit(self.suggester.encoder):
                suggestion = self.suggester.suggest(text, list(self.conversation.turns), self.k)
        except ReplybotError as exc:
            self.say(f"· 无法给出建议：{exc}")
            return
        except Exception as exc:  # a long-running helper reports a bug and keeps watching
            self.say(f"· 出错了，已跳过这条消息：{type(exc).__name__}: {exc}")
            return
        elapsed = time.perf_counter() - started
        self.conversation.add_buyer(text, now)
        self.shown = Shown(text, suggestion, self.conversation.id)
        self.editing = False
        preview = " ".join(text.split())
        preview = preview if len(preview) <= 40 else preview[:39] + "…"
        n_turn = self.conversation.buyer_count
        self.say("")
        self.say(f"━━ 买家：{preview}  （本会话第 {n_turn} 条，{elapsed:.2f} 秒）")
        self.say(to_text(suggestion))
        if suggestion.drafts:
            self.say(KEY_HINT.format(n=len(suggestion.drafts)))

    # keys ----------------------------------------------------------------------------------

    def on_key(self, key: str) -> bool:
        """Handle one key; False means quit."""
        if key in ("q", "Q", "\x04"):
            return False
        if key.isdigit() and key != "0":
            editing, self.editing = self.editing, False
            self.pick(int(key), edit=editing)
        elif key in ("e", "E"):
            self.start_edit()
        elif key in ("n", "N"):
            self.editing = False
            self.conversation.reset()
            self.shown = None
            self.say("· 已开始新会话")
        elif self.editing and key not in ("\r", "\n", " "):
            self.editing = False
            self.say("· 已取消编辑")
        return True

    def start_edit(self) -> None:
        if self.shown is None or not self.shown.suggestion.drafts:
            self.say("· 还没有可以编辑的草稿")
            return
        n = len(self.shown.suggestion.drafts)
        if n == 1:
            self.pick(1, edit=True)
            return
        self.editing = True
        self.say(f"· 编辑第几条？按 1-{n}")

    def pick(self, n: int, edit: bool = False) -> None:
        if self.shown is None:
            self.say("· 还没有建议：先复制一条买家消息")
            return
        drafts = self.shown.suggestion.drafts
        if n > len(drafts):
            self.say(f"· 没有第 {n} 条草稿")
            return
        text = drafts[n - 1].text
        if edit:
            edited = self.edit(text)
            if not edited or not edited.strip():
                self.say("· 已取消编辑")
                return
            text = edited.strip()
        try:
            self.clipboard.write(text)
        except ClipboardError as exc:
            self.say(f"· {exc}")
            return
        self.own_writes.append(text)
        self._record(n, text, copied=False)

    def _encode_ahead(self, reply: str) -> None:
        """The reply is the next message's context: encode it while the agent pastes it."""
        try:
            with self.threads.limit(self.suggester.encoder):
                self.suggester.remember([reply])
        except Exception:  # only a head start: the next suggestion encodes it if this failed
            pass

    def edit(self, initial: str) -> str | None:
        if os.environ.get("EDITOR"):
            return edit_with_editor(initial, self.keys)
        return self.keys.read_line("改好后回车（Ctrl-C 取消）：", initial)

    def _record(self, n: int, text: str, copied: bool) -> None:
        """The picked draft becomes the agent's turn and a line in the pick log."""
        assert self.shown is not None
        draft = self.shown.suggestion.drafts[n - 1]
        edited = text != draft.text
        self.conversation.add_agent(text, self.clock())
        note = "（已修改）" if edited else ""
        if copied:
            self.say(f"· 已记下：你复制了第 {n} 条草稿")
        else:
            self.say(f"· 已复制第 {n} 条草稿{note}，到聊天窗口粘贴发送")
        self._encode_ahead(text)
        if self.log is None:
            return
        from .picklog import pick_record

        s = self.shown.suggestion
        record = pick_record(self.shown.conversation, self.shown.message, s.intent, s.buyer_type, draft.id, n, text, edited)
        try:
            self.log.append(record)
        except OSError as exc:
            if not self._log_failed:
                self._log_failed = True
                self.say(f"· 无法写入记录 {self.log.path}：{exc}")


# ---- the loop and the entry point --------------------------------------------------------------


def watch(
    helper: ClipHelper,
    backend: ClipboardBackend,
    keys: Keys,
    last_seen: str | Unreadable,
    poll_s: float = POLL_S,
    settle_s: float = SETTLE_S,
) -> int:
    """Poll clipboard and keys until q; last_seen (what was there at start) is not a new message."""
    pending: str | Unreadable | None = None
    pending_since = 0.0
    while True:
        for key in keys.poll(poll_s):
            if not helper.on_key(key):
                helper.say("· 已退出")
                return 0
        content = backend.read()
        now = time.monotonic()
        if content == last_seen:
            pending = None
        elif content != pending:
            pending, pending_since = content, now
        elif now - pending_since >= settle_s:
            last_seen, pending = content, None
            helper.on_clipboard(content)


def _stderr_progress() -> Callable[[str, float], None]:
    state = {"label": ""}

    def report(label: str, fraction: float) -> None:
        if label != state["label"]:
            state["label"] = label
            print(f"  {label}…", file=sys.stderr, flush=True)

    return report


def _load_suggester(options: ClipOptions) -> Suggester:
    from .suggest import Suggester

    return Suggester(shop_path=options.shop, progress=_stderr_progress())


def run_clip(options: ClipOptions, suggester: Suggester | None = None) -> int:
    """Run the helper (or, with once, one look at the clipboard); returns the exit code."""
    if not 1 <= options.k <= MAX_DRAFT_KEYS:
        raise InputError(f"-k 应在 1 到 {MAX_DRAFT_KEYS} 之间（收到 {options.k}）")
    if options.as_json and not options.once:
        raise InputError("--json 只能和 --once 一起用")
    if options.new_after_s <= 0:
        raise InputError(f"--new-after 应大于 0（收到 {options.new_after_s:g}）")
    backend = ClipboardBackend.detect()
    if options.once:
        return run_once(options, backend, suggester)

    print("正在加载模型…", flush=True)
    suggester = suggester or _load_suggester(options)
    suggester.bundle  # model and index now, not at the first message
    warm_up = [Turn(role="buyer", text="在吗"), Turn(role="agent", text="亲，在的")]
    suggester.suggest("能便宜点吗", warm_up, 1)  # touch every code path once, context included
    log = None
    if options.log:
        from .picklog import PickLog, default_log_path

        log = PickLog(options.log_path or default_log_path())
    with open_keys() as keys, _terminate_as_exit():
        helper = ClipHelper(suggester, backend, keys, options.k, options.new_after_s, log)
        initial = backend.read()  # before "ready": anything copied after that line counts
        print(f"{READY}（剪贴板：{backend.name}）", flush=True)
        if log is not None:
            print(f"选择记录（已脱敏，--no-log 关闭）：{log.path}", flush=True)
        print(KEY_HINT.format(n=options.k), flush=True)
        return watch(helper, backend, keys, initial, options.poll_s)


def run_once(options: ClipOptions, backend: ClipboardBackend, suggester: Suggester | None = None) -> int:
    """One look at the clipboard: suggestions and 0, or why it is no buyer message and 1."""
    from .render import to_json, to_text

    content = backend.read()
    ok, reason = (False, content.reason) if isinstance(content, Unreadable) else is_buyer_message(content)
    if not ok:
        print(f"错误: 剪贴板里不是买家消息：{reason}", file=sys.stderr, flush=True)
        return 1
    assert isinstance(content, str)
    suggester = suggester or _load_suggester(options)
    suggestion = suggester.suggest(content.strip(), [], options.k)
    print(to_json(suggestion) if options.as_json else to_text(suggestion), flush=True)
    return 0


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like q does, so the terminal is restored from cbreak mode."""

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    try:
        old = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
