"""Weight storage formats of the sparse delta engine and the memory images they make.

One input event walks its *fan-out list* (dense: the row ``W[i, :]``; conv: the candidate taps x
filters of its input class, :func:`rl2fpga.hls.engine.generator.conv_lists`). Lane ``l`` holds
the outputs ``f = fb * lanes + l`` of every list. A list part of one lane is stored as

* ``csc``   -- one word ``tap << (fbw + w_bits) | fb << w_bits | w`` per nonzero (absolute
  index) and a table word ``{len, ptr}`` per (list, lane);
* ``rel``   -- one word ``run << w_bits | w`` per nonzero, ``run`` = zero positions skipped
  since the previous entry (positions ``p = tap << fbw | fb``, the first entry counts from
  p = 0); a gap wider than ``2^run_bits - 1`` is bridged by *filler* entries ``(2^run_bits -
  1, w = 0)`` that cost a word and a cycle and are no MAC (Deep Compression's relative index);
  plus the ``{len, ptr}`` table;
* ``bitmap`` -- the nonzero values only (``w`` words), and per (list, lane) a table word
  ``{bitmap, ptr}`` whose bitmap has one bit per position ``p = tap * fb_n + fb`` of the list
  part (the walker finds the next set bit each cycle: one cycle per nonzero, like csc);
* ``dense`` -- the values only, every position of the list (zeros included), no index and no
  table: the list of input ``t`` starts at ``t * list_len`` (``list_len = taps * fb``). Zero
  weights cost a cycle and are no MAC.

Every layer also stores its bias image, and a layer with per-output-channel weight scales its
shift image (part ``scale``). :func:`layer_images` builds the images' contents; the
generator writes exactly these (:func:`write_image`, with a header line declaring width and
depth) and the compression accounting sums ``depth x width`` of the same list, so the
stored-bits figure is the bits of the images. :func:`measure_images` reads a generated folder
back (every ``*.mem`` in it) and is what the rtl step checks the figure against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rl2fpga.errors import Rl2fpgaError
from rl2fpga.hls.engine import contract as hw
from rl2fpga.hls.engine.contract import bits_for, lane_mem_file, tap_bits

FORMATS = ("csc", "rel", "bitmap", "dense")
TABLE_FORMATS = ("csc", "rel", "bitmap")  # stored with a {len, ptr} table per (list, lane)
FORMAT_ID = {"csc": 0, "rel": 1, "dense": 2, "bitmap": 3}  # rl2fpga_layer FORMAT parameter
CHOICES = ("auto", *FORMATS)  # rtl.format
_IMAGE_LINE = re.compile(r"// image: (\d+) bits x (\d+) words")


@dataclass
class Image:
    """One ``$readmemh`` image: file name, words, declared width, and what it holds."""

    name: str
    values: list[int]
    width: int
    part: str  # weights | table | bias | scale (per-channel shifts, generator._shift_images)

    @property
    def bits(self) -> int:
        return len(self.values) * self.width


@dataclass
class LaneStore:
    """A layer's fan-out lists in one storage format, split by lane."""

    fmt: str
    entries: list[np.ndarray]  # per lane: stored words
    ptr: np.ndarray  # (n_lists, lanes): first word of each list part
    length: np.ndarray  # (n_lists, lanes): words of each list part (fillers and zeros included)
    fbw: int
    tap_bits: int
    w_bits: int
    entry_bits: int  # one stored word
    run_bits: int = 0  # rel
    list_len: int = 0  # dense: words per list part; bitmap: bits of a bitmap
    fillers: int = 0  # rel: filler words

    @property
    def words(self) -> int:
        return max(max((len(e) for e in self.entries), default=0), 1)

    @property
    def ptr_bits(self) -> int:
        return bits_for(self.words)

    @property
    def len_bits(self) -> int:
        """Bits of the table's len field (bitmap: the bitmap)."""
        if self.fmt == "bitmap":
            return self.list_len
        return bits_for(max(int(self.length.max(initial=1)), 1))

    @property
    def has_table(self) -> bool:
        return self.fmt in TABLE_FORMATS

    def weight_bits(self) -> int:
        """Bits of the lane images (an empty lane still loads one zero word)."""
        return sum(max(len(e), 1) for e in self.entries) * self.entry_bits

    def table_bits(self) -> int:
        return self.ptr.shape[0] * self.ptr.shape[1] * (self.ptr_bits + self.len_bits) if self.has_table else 0


def _lane_nonzeros(w3: np.ndarray, lanes: int, lane: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(list, tap, fb, w) of the nonzeros of ``lane``, ordered by list, tap, fb."""
    sub = w3[:, :, lane::lanes]
    t, tap, fb = np.nonzero(sub)
    return t, tap, fb, sub[t, tap, fb].astype(np.int64)


def _ptrs(length: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)


def store_csc(w3: np.ndarray, lanes: int, w_bits: int) -> LaneStore:
    """Absolute indices: ``tap << (fbw + w_bits) | fb << w_bits | w`` per nonzero."""
    n_lists, n_taps, n_out = w3.shape
    fbw, tb, wmask = hw.fb_bits(n_out, lanes), tap_bits(n_taps), (1 << w_bits) - 1
    ptr, length = np.zeros((n_lists, lanes), np.int64), np.zeros((n_lists, lanes), np.int64)
    entries = []
    for lane in range(lanes):
        t, tap, fb, w = _lane_nonzeros(w3, lanes, lane)
        length[:, lane] = np.bincount(t, minlength=n_lists)
        ptr[:, lane] = _ptrs(length[:, lane])
        entries.append((tap.astype(np.int64) << (fbw + w_bits)) | (fb.astype(np.int64) << w_bits) | (w & wmask))
    return LaneStore("csc", entries, ptr, length, fbw, tb, w_bits, entry_bits=tb + fbw + w_bits)


def store_rel(w3: np.ndarray, lanes: int, w_bits: int, run_bits: int) -> LaneStore:
    """Relative indices of ``run_bits`` with filler entries when a gap overflows."""
    n_lists, n_taps, n_out = w3.shape
    fbw, tb, wmask, span = hw.fb_bits(n_out, lanes), tap_bits(n_taps), (1 << w_bits) - 1, 1 << run_bits
    ptr, length = np.zeros((n_lists, lanes), np.int64), np.zeros((n_lists, lanes), np.int64)
    entries, fillers = [], 0
    for lane in range(lanes):
        t, tap, fb, w = _lane_nonzeros(w3, lanes, lane)
        pos = (tap.astype(np.int64) << fbw) | fb
        first = np.ones(len(t), dtype=bool)
        first[1:] = t[1:] != t[:-1]
        prev = np.where(first, -1, np.concatenate([[-1], pos[:-1]]))
        gap = pos - prev - 1
        n_fill = gap >> run_bits  # each filler advances the position by span
        run = gap - n_fill * span
        words = np.full(int((n_fill + 1).sum()), (span - 1) << w_bits, dtype=np.int64)
        words[np.cumsum(n_fill + 1) - 1] = (run << w_bits) | (w & wmask)
        entries.append(words)
        fillers += int(n_fill.sum())
        length[:, lane] = np.bincount(t, weights=n_fill + 1, minlength=n_lists).astype(np.int64)
        ptr[:, lane] = _ptrs(length[:, lane])
    return LaneStore("rel", entries, ptr, length, fbw, tb, w_bits, entry_bits=run_bits + w_bits,
                     run_bits=run_bits, fillers=fillers)


def store_bitmap(w3: np.ndarray, lanes: int, w_bits: int) -> LaneStore:
    """Nonzero values only; the table's len field holds the list part's bitmap (bit p set:
    position p = tap * fb_n + fb holds the next value)."""
    n_lists, n_taps, n_out = w3.shape
    fb_n, wmask = -(-n_out // lanes), (1 << w_bits) - 1
    ptr, bitmap = np.zeros((n_lists, lanes), np.int64), np.zeros((n_lists, lanes), dtype=object)
    entries = []
    for lane in range(lanes):
        t, tap, fb, w = _lane_nonzeros(w3, lanes, lane)
        ptr[:, lane] = _ptrs(np.bincount(t, minlength=n_lists))
        for ti, p in zip(t.tolist(), (tap * fb_n + fb).tolist(), strict=True):
            bitmap[ti, lane] = int(bitmap[ti, lane]) | (1 << p)
        entries.append(w & wmask)
    bitmap[bitmap == 0] = 0  # plain ints throughout
    return LaneStore("bitmap", entries, ptr, bitmap, hw.fb_bits(n_out, lanes), tap_bits(n_taps), w_bits,
                     entry_bits=w_bits, list_len=n_taps * fb_n)


def store_dense(w3: np.ndarray, lanes: int, w_bits: int) -> LaneStore:
    """Values only: every (tap, fb) position of every list part, zeros included."""
    n_lists, n_taps, n_out = w3.shape
    fb = -(-n_out // lanes)
    fbw, wmask = hw.fb_bits(n_out, lanes), (1 << w_bits) - 1
    list_len = n_taps * fb
    entries = []
    for lane in range(lanes):
        sub = np.zeros((n_lists, n_taps, fb), dtype=np.int64)
        part = w3[:, :, lane::lanes]
        sub[:, :, : part.shape[2]] = part
        entries.append(sub.reshape(-1) & wmask)
    length = np.full((n_lists, lanes), list_len, dtype=np.int64)
    ptr = np.repeat((np.arange(n_lists, dtype=np.int64) * list_len)[:, None], lanes, axis=1)
    return LaneStore("dense", entries, ptr, length, fbw, tap_bits(n_taps), w_bits, entry_bits=w_bits,
                     list_len=list_len)


def candidates(w3: np.ndarray, lanes: int, w_bits: int) -> list[LaneStore]:
    """Every format the engine can store this layer in (rel: each useful run width)."""
    idx = tap_bits(w3.shape[1]) + hw.fb_bits(w3.shape[2], lanes)
    out = [store_csc(w3, lanes, w_bits), store_dense(w3, lanes, w_bits), store_bitmap(w3, lanes, w_bits)]
    out += [store_rel(w3, lanes, w_bits, r) for r in range(1, idx + 1)]  # r = idx: no filler, csc's size
    return out


def choose(w3: np.ndarray, lanes: int, w_bits: int, fmt: str = "auto", run_bits: int | None = None) -> LaneStore:
    """The layer's store in ``fmt``; ``auto``: the one of fewest stored bits (ties: csc, then
    dense, then bitmap, then the narrowest rel). ``run_bits`` forces rel's index width (tests: fillers)."""
    if fmt not in CHOICES:
        raise Rl2fpgaError(f"rtl.format = {fmt!r} is not a storage format; use one of {', '.join(CHOICES)}")
    if fmt == "rel" and run_bits is not None:
        if run_bits < 1:
            raise Rl2fpgaError(f"rel run_bits = {run_bits} must be >= 1; use a positive index width")
        return store_rel(w3, lanes, w_bits, run_bits)
    cands = candidates(w3, lanes, w_bits)
    if fmt != "auto":
        cands = [c for c in cands if c.fmt == fmt]
    return min(cands, key=lambda c: c.weight_bits() + c.table_bits())


def join_lanes(words: np.ndarray, lane_bits: int) -> list[int]:
    """One word per row of ``words`` (rows, lanes): lane ``l``'s field at bits ``l * lane_bits``."""
    out = []
    for row in words.tolist():
        v = 0
        for lane_i, x in enumerate(row):
            v |= (int(x) & ((1 << lane_bits) - 1)) << (lane_i * lane_bits)
        out.append(v)
    return out


@dataclass
class LayerImages:
    store: LaneStore
    images: list[Image] = field(default_factory=list)

    def bits(self, part: str | None = None) -> int:
        return sum(im.bits for im in self.images if part is None or im.part == part)


def signed_bits(values: np.ndarray) -> int:
    """Two's complement bits that hold every value (at least 1)."""
    v = [int(x) for x in np.asarray(values).reshape(-1)] or [0]
    return max(1, max((x if x >= 0 else -x - 1).bit_length() + 1 for x in v))


def layer_images(name: str, store: LaneStore, bias: np.ndarray, b_bits: int,
                 extra: tuple[Image, ...] = ()) -> LayerImages:
    """The layer's images: one weight memory per lane, the ``{len, ptr}`` table (csc, rel,
    bitmap), the bias (``bias``: (fb, lanes) words of ``b_bits`` per lane, sign-extended to
    the accumulator in the engine), then ``extra`` (e.g. per-channel requantize shifts, part
    ``scale``): every image the engine loads goes through here, so it is written and counted."""
    lanes = len(store.entries)
    images = [Image(lane_mem_file(f"{name}_w", lane), [int(v) for v in e] or [0], store.entry_bits, "weights")
              for lane, e in enumerate(store.entries)]
    if store.has_table:
        tew = store.ptr_bits + store.len_bits
        images.append(Image(f"{name}_tab.mem", join_lanes((store.length << store.ptr_bits) | store.ptr, tew),
                            lanes * tew, "table"))
    images.append(Image(f"{name}_b.mem", join_lanes(bias, b_bits), lanes * b_bits, "bias"))
    return LayerImages(store, images + list(extra))


def image_text(image: Image) -> str:
    """The file's text: the generated header, the declared width and depth, one hex word a line."""
    from rl2fpga import GENERATED_HEADER

    digits = max(1, -(-image.width // 4))
    head = f"// {GENERATED_HEADER}\n// image: {image.width} bits x {len(image.values)} words\n"
    return head + "".join(f"{v:0{digits}x}\n" for v in image.values)


def read_image_bits(path: Path) -> int:
    """Bits a ``$readmemh`` image loads: its words x its declared width (every word checked to
    fit the width, the word count against the declared depth)."""
    width = depth = None
    words = 0
    for line in path.read_text().splitlines():
        m = _IMAGE_LINE.fullmatch(line.strip())
        if m:
            width, depth = int(m.group(1)), int(m.group(2))
        elif line.strip() and not line.lstrip().startswith("//"):
            if width is None or int(line, 16) >> width:
                raise Rl2fpgaError(f"{path}: a word wider than the declared width (or no '// image:' line); regenerate the engine")
            words += 1
    if width is None or words != depth:
        raise Rl2fpgaError(f"{path}: {words} words but the header declares {depth}; regenerate the engine")
    return words * width


def measure_images(folder: str | Path) -> dict[str, int]:
    """Bits of every ``*.mem`` image in ``folder`` by file name, read from the files."""
    return {p.name: read_image_bits(p) for p in sorted(Path(folder).glob("*.mem"))}
