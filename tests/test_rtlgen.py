"""The RTL generator: list packing, memory images, refusals, lint."""

from __future__ import annotations

import dataclasses
import re
import shutil

import numpy as np
import pytest

from rl2fpga import GENERATED_HEADER
from rl2fpga.core.golden import Fmt, GoldenModel, random_model
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.hls.engine.generator import generate, lint, pack_lists


def _unpack(packed, n_out: int, lanes: int, w_bits: int) -> np.ndarray:
    """Rebuild the weight matrix from the per-lane entries (independent of the packer)."""
    out = np.zeros((len(packed.ptr), n_out), dtype=np.int64)
    for t in range(len(packed.ptr)):
        for lane in range(lanes):
            p, n = packed.ptr[t, lane], packed.length[t, lane]
            for field in packed.entries[lane][p : p + n]:
                w = int(field) & ((1 << w_bits) - 1)
                w = w - (1 << w_bits) if w >> (w_bits - 1) else w
                fb = int(field) >> w_bits
                assert w != 0, "a stored weight is zero"
                assert out[t, fb * lanes + lane] == 0, "an output appears twice in one list"
                out[t, fb * lanes + lane] = w
    return out


@pytest.mark.parametrize("lanes", [1, 3, 4, 8])
def test_pack_lists_roundtrip(lanes: int) -> None:
    rng = np.random.default_rng(lanes)
    w = rng.integers(-128, 128, size=(37, 21))
    w[rng.random(w.shape) < 0.8] = 0
    w[5] = 0  # an empty list
    packed = pack_lists(w, lanes, 8)
    assert np.array_equal(_unpack(packed, 21, lanes, 8), w)
    # no padding: the lanes hold exactly the nonzero weights
    assert sum(len(e) for e in packed.entries) == np.count_nonzero(w)
    for t in range(w.shape[0]):
        assert [packed.length[t, lane] for lane in range(lanes)] == [np.count_nonzero(w[t, lane::lanes]) for lane in range(lanes)]
    assert packed.length[5].sum() == 0


def _mlp(seed: int = 0, **kw) -> GoldenModel:
    return random_model(np.random.default_rng(seed), (4,), [("dense", 16), ("dense", 3)], sparsity=0.5, **kw)


def test_generate_writes_headers_and_images(tmp_path) -> None:
    m = _mlp()
    d = generate(m, tmp_path, lanes=2, input_bytes_per_beat=4)
    top = (tmp_path / "rl2fpga_engine_top.sv").read_text()
    assert GENERATED_HEADER in top.splitlines()[0]
    assert "module rl2fpga_engine_top" in top
    for p in d.mem_files:
        lines = p.read_text().splitlines()
        assert GENERATED_HEADER in lines[0]
        assert re.fullmatch(rf"// image: \d+ bits x {len(lines) - 2} words", lines[1])
        assert all(re.fullmatch(r"[0-9a-f]+", ln) for ln in lines[2:])
    # bias image of layer 0: lane fields of b_bits (<= acc_bits) each, 2 lanes per word
    plan = d.layers[0]
    words = [int(x, 16) for x in (tmp_path / plan.bias_file).read_text().splitlines()[2:]]
    assert 1 <= plan.b_bits <= plan.acc_bits
    mask = (1 << plan.b_bits) - 1
    got = []
    for v in words:
        for lane in range(2):
            f = (v >> (lane * plan.b_bits)) & mask
            got.append(f - (1 << plan.b_bits) if f >> (plan.b_bits - 1) else f)
    assert got[:16] == [int(b) for b in m.layers[0].b]
    assert (tmp_path / "design.json").exists()


def test_refuses_unsupported_activation(tmp_path) -> None:
    m = _mlp()
    m.layers[0].activation = "tanh"  # type: ignore[assignment]
    with pytest.raises(Rl2fpgaError) as e:
        generate(m, tmp_path)
    assert "tanh" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "rl2fpga_engine_top.sv").exists()


def test_refuses_conv_after_dense(tmp_path) -> None:
    rng = np.random.default_rng(0)
    base = random_model(rng, (6, 6, 1), [("conv2d", 2, 3, 1), ("dense", 4)])
    dense = dataclasses.replace(base.layers[1], name="d0", w=rng.integers(-3, 3, size=(36, 36)),
                                b=np.zeros(36, dtype=np.int64), in_shape=(36,))
    conv = dataclasses.replace(base.layers[0], name="c1", in_shape=(6, 6, 1), in_fmt=dense.out_fmt)
    with pytest.raises(Rl2fpgaError, match="conv2d after a dense"):
        generate(GoldenModel([dense, conv]), tmp_path)


def test_refuses_memory_that_does_not_fit(tmp_path) -> None:
    m = random_model(np.random.default_rng(0), (1024,), [("dense", 1024), ("dense", 2)], sparsity=0.0)
    with pytest.raises(Rl2fpgaError, match="BRAM"):
        generate(m, tmp_path)


def test_refuses_wide_formats(tmp_path) -> None:
    m = _mlp(in_fmt=Fmt(24, 4, True))
    with pytest.raises(Rl2fpgaError, match="bits"):
        generate(m, tmp_path)


def test_refuses_bad_beat_width(tmp_path) -> None:
    m = _mlp(in_fmt=Fmt(12, 4, True))  # 2-byte elements
    with pytest.raises(Rl2fpgaError, match="input_bytes_per_beat"):
        generate(m, tmp_path, input_bytes_per_beat=3)


def test_refuses_schedules_the_input_stage_cannot_feed(tmp_path) -> None:
    """rtl.schedule = rows and rtl.row_order = bottom_up need the frame-stack encoder (row
    markers, row labels) and rows a conv first layer; unknown names are refused by name."""
    rng = np.random.default_rng(2)
    cnn = random_model(rng, (9, 9, 4), [("conv2d", 3, 3, 2), ("dense", 3)], sparsity=0.5)
    for kw in ({"schedule": "rows"}, {"row_order": "bottom_up"}):
        with pytest.raises(Rl2fpgaError, match="needs the frame-stack input stage"):
            generate(cnn, tmp_path / "a", frame_stack=False, **kw)
    with pytest.raises(Rl2fpgaError, match="rtl.schedule = 'bars'"):
        generate(cnn, tmp_path / "b", frame_stack=True, schedule="bars")
    with pytest.raises(Rl2fpgaError, match="rtl.row_order = 'left'"):
        generate(cnn, tmp_path / "c", frame_stack=True, row_order="left")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    d = generate(cnn, tmp_path / "d", frame_stack=True, schedule="rows", row_order="bottom_up")
    assert [p.rows for p in d.layers] == [True, False] and not any(p.mark_out for p in d.layers)
    top = (tmp_path / "d" / f"{d.top}.sv").read_text()
    assert ".MARK(1), .MARK_SH(2), .MARK_PH(0), .DESC(1)" in top


@pytest.mark.verilator
@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
@pytest.mark.parametrize("kind,beat_bytes", [("mlp", 8), ("mlp", 4), ("mlp", 2), ("cnn", 16), ("short", 8),
                                              ("short_wide", 8), ("rows", 8)])
def test_lint_clean(tmp_path, kind: str, beat_bytes: int) -> None:
    rng = np.random.default_rng(3)
    if kind == "short":  # every layer on the short path, per-channel shifts, padding outputs
        m = random_model(rng, (4,), [("dense", 10), ("dense", 7), ("dense", 3)], sparsity=0.1, w_bits=4,
                         in_fmt=Fmt(12, 5, True), w_frac_spread=3, out_fmt=Fmt(16, 12, True))
        d = generate(m, tmp_path, lanes=3, input_bytes_per_beat=beat_bytes, fmt="dense")
        assert {p.module for p in d.layers} == {"rl2fpga_dense_layer"}
    elif kind == "short_wide":  # 4 words requantized word by word, then 3 in one step (RQ_ALL)
        m = random_model(rng, (4,), [("dense", 20), ("dense", 11), ("dense", 2)], sparsity=0.1, w_bits=4,
                         in_fmt=Fmt(12, 5, True))
        d = generate(m, tmp_path, lanes=5, input_bytes_per_beat=beat_bytes, fmt="dense")
        assert {p.module for p in d.layers} == {"rl2fpga_dense_layer"}
        assert [p.rq_all for p in d.layers] == [False, True, False]
    elif kind == "mlp":
        m = random_model(rng, (4,), [("dense", 64), ("dense", 64), ("dense", 2)], sparsity=0.9,
                         in_fmt=Fmt(16, 5, True))
        d = generate(m, tmp_path, lanes=4, input_bytes_per_beat=beat_bytes)
    elif kind == "rows":  # the row schedule, rows bottom up, frame stack in fabric
        m = random_model(rng, (13, 11, 4), [("conv2d", 5, 3, 2), ("conv2d", 6, 2, 1), ("dense", 7), ("dense", 3)],
                         sparsity=0.7)
        d = generate(m, tmp_path, lanes=3, input_bytes_per_beat=beat_bytes, frame_stack=True, schedule="rows",
                     row_order="bottom_up")
    else:
        m = random_model(rng, (13, 11, 3), [("conv2d", 5, 3, 2), ("conv2d", 6, 2, 1), ("dense", 7), ("dense", 3)],
                         sparsity=0.7)
        d = generate(m, tmp_path, lanes=3, input_bytes_per_beat=beat_bytes)
    log = lint(d, tmp_path / "lint.log")
    assert "%Warning" not in log and "%Error" not in log


def test_short_path_only_for_small_dense_format_dense_layers(tmp_path) -> None:
    """rl2fpga_dense_layer takes a dense layer stored in the dense format with at most
    SHORT_PATH_MAX_OUT outputs and SHORT_PATH_MAX_WORDS words per lane; anything else (a
    conv, a table format, a wider layer) the general rl2fpga_layer; the top instantiates it."""
    from rl2fpga.hls.engine.generator import SHORT_PATH_MAX_OUT

    rng = np.random.default_rng(5)
    m = random_model(rng, (9, 9, 2), [("conv2d", 4, 3, 2), ("dense", SHORT_PATH_MAX_OUT + 1), ("dense", 6),
                                      ("dense", 2)], sparsity=0.2, w_bits=4)
    d = generate(m, tmp_path / "dense", lanes=4, fmt="dense")
    assert [p.module for p in d.layers] == ["rl2fpga_layer", "rl2fpga_layer", "rl2fpga_dense_layer",
                                            "rl2fpga_dense_layer"]
    assert [p.mem_bits["dirty_lists"] == 0 for p in d.layers] == [False, False, True, True]
    top = (d.out_dir / "rl2fpga_engine_top.sv").read_text()
    assert re.findall(r"^  (rl2fpga_\w*layer) #\(", top, re.M) == [p.module for p in d.layers]
    d = generate(m, tmp_path / "csc", lanes=4, fmt="csc")
    assert {p.module for p in d.layers} == {"rl2fpga_layer"}
    d = generate(m, tmp_path / "off", lanes=4, fmt="dense", short_path=False)
    assert {p.module for p in d.layers} == {"rl2fpga_layer"}
    assert all(p.mem_bits["dirty_lists"] > 0 for p in d.layers)


def test_rq_all_only_before_a_layer_taking_pairs(tmp_path) -> None:
    """A short-path layer requantizes all its words in one step (RQ_ALL) only when the next
    layer takes two events per cycle (a short-path layer with 2 x outputs <= lanes) and it has
    at most 16 accumulators; the top passes RQ_ALL to the short-path modules only."""
    rng = np.random.default_rng(6)

    def rq_all(widths: list[int], lanes: int, **kw) -> list[bool]:
        m = random_model(rng, (4,), [("dense", n) for n in widths], sparsity=0.1, w_bits=4)
        d = generate(m, tmp_path / f"{widths}_{lanes}_{kw}", lanes=lanes, fmt="dense", **kw)
        top = (d.out_dir / "rl2fpga_engine_top.sv").read_text()
        assert re.findall(r"\.RQ_ALL\((\d)\)", top) == [str(int(p.rq_all)) for p in d.layers if p.module != "rl2fpga_layer"]
        return [p.rq_all for p in d.layers]

    assert rq_all([8, 8, 2], 4) == [False, True, False]  # 8 accumulators before a 2-output layer
    assert rq_all([8, 8, 3], 4) == [False, False, False]  # 3 outputs on 4 lanes: one event per cycle
    assert rq_all([8, 20, 2], 4) == [False, False, False]  # 5 words x 4 lanes = 20 > 16 accumulators
    assert rq_all([8, 16, 2], 4) == [False, True, False]  # 16: the largest
    assert rq_all([8, 8, 2], 4, short_path=False) == [False, False, False]


def test_per_layer_lanes_reach_the_top_images_and_accounting(tmp_path) -> None:
    """rtl.layer_lanes: each layer's LANES in the top, one weight image per lane of that layer,
    bias rows of that layer's lane count, design.json/INFO lanes = the widest layer; the size
    accounting (quantize's compression) counts the same images; a wrong list is one line."""
    from rl2fpga.hls.engine.contract import lane_mem_file
    from rl2fpga.hls.engine.formats import measure_images
    from rl2fpga.hls.engine.generator import RtlDesign
    from rl2fpga.quantize.compression import compression

    rng = np.random.default_rng(8)
    m = random_model(rng, (9, 9, 2), [("conv2d", 5, 3, 2), ("dense", 12), ("dense", 3)], sparsity=0.5,
                     threshold=1, flatten=True)
    per = [2, 5, 1]
    d = generate(m, tmp_path / "per", lanes=per, input_bytes_per_beat=8)
    assert d.layer_lanes == per and d.lanes == 5
    top = (d.out_dir / "rl2fpga_engine_top.sv").read_text()
    assert [int(v) for v in re.findall(r"\.LANES\((\d+)\)", top)] == per
    assert f"32'h{(len(per) | (5 << 8) | (8 << 16)):08x}" in top  # INFO: layers, widest lanes, beat bytes
    for plan, n in zip(d.layers, per, strict=True):
        lane_images = {p.name for p in d.mem_files if p.name.startswith(plan.wmem_file) and p.name != plan.tab_file}
        assert lane_images == {lane_mem_file(plan.wmem_file, lane) for lane in range(n)}
        assert all((d.out_dir / name).exists() for name in lane_images)
        assert plan.fb == -(-plan.n_out // n)
    again = RtlDesign.load(d.out_dir)
    assert again.layer_lanes == per and sorted(again.mem_files) == sorted(d.mem_files)
    measured = sum(measure_images(d.out_dir).values())
    assert measured == d.stored_bits == compression(m, lanes=per)["total"]["stored_bits"]
    assert measured != compression(m, lanes=5)["total"]["stored_bits"]  # the lanes change the images
    with pytest.raises(Rl2fpgaError, match=r"rtl.layer_lanes has 2 entries for 3 layers"):
        generate(m, tmp_path / "short", lanes=[2, 5])
    with pytest.raises(Rl2fpgaError, match=r"lanes = 65 \(layer .*\) is out of range; use 1..64 \(rtl.layer_lanes\)"):
        generate(m, tmp_path / "wide", lanes=[2, 65, 1])
