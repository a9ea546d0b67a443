"""Weight storage formats of the sparse delta engine (csc, rel, dense): the stored bits reported
equal the bits of the written memory images (read here, widths from the SV parameters), the
images decode (by a reader written here) to exactly the golden weights, fillers appear where a
gap overflows the relative index, auto picks the smallest, an old design.json still loads,
and (Verilator) the engine computes the golden outputs and MAC counts in every format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rl2fpga.core.golden import Fmt, GoldenModel, random_model
from rl2fpga.core.layers import Conv2D
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.hls.engine.generator import RtlDesign, conv_lists, generate

FORCED = ["csc", "rel", "bitmap", "dense"]


def _mlp(seed: int = 0, sparsity: float = 0.9) -> GoldenModel:
    """CartPole-sized: 4 -> 64 -> 64 -> 2."""
    return random_model(np.random.default_rng(seed), (4,), [("dense", 64), ("dense", 64), ("dense", 2)],
                        sparsity=sparsity, in_fmt=Fmt(16, 5, True))


def _cnn(seed: int = 11) -> GoldenModel:
    return random_model(np.random.default_rng(seed), (15, 13, 3),
                        [("conv2d", 5, 3, 2), ("conv2d", 7, 2, 3), ("dense", 7), ("dense", 3)], sparsity=0.6, threshold=1)


def _words(path: Path) -> list[int]:
    return [int(ln, 16) for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("//")]


def _widths(p: dict, lanes: int) -> dict[str, int]:
    """Each image's width as the SV declares its memory (rl2fpga_layer / list_lookup / walker)."""
    fbw, tb, wb = p["fb_bits"], p["tap_bits"], p["w_bits"]
    entry = {"csc": tb + fbw + wb, "rel": p["run_bits"] + wb, "bitmap": wb, "dense": wb}[p["format"]]
    return {"w": entry, "tab": lanes * (p["ptr_bits"] + p["len_bits"]), "b": lanes * p["b_bits"],
            "s": lanes * p.get("shift_bits", 0)}  # per-channel shifts (rl2fpga_requant's shift_rom)


def _measured(folder: Path) -> tuple[int, dict[str, int]]:
    """Bits of every .mem file in ``folder``: lines x the width the SV gives that memory."""
    meta = json.loads((folder / "design.json").read_text())
    lanes, total, per_layer = meta["lanes"], 0, {}
    by_name = {p["name"]: p for p in meta["layers"]}
    for f in sorted(folder.glob("*.mem")):
        layer, kind = f.name.rsplit("_", 1)
        p = by_name[layer]
        width = _widths(p, lanes)[kind[0] if kind[0] in "wbs" else "tab"]
        words = _words(f)
        assert all(v >> width == 0 for v in words), f"{f.name}: a word wider than the memory"
        total += len(words) * width
        per_layer[layer] = per_layer.get(layer, 0) + len(words) * width
    return total, per_layer


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def _decode(folder: Path, p: dict, lanes: int) -> np.ndarray:
    """The layer's (lists, taps, outputs) weights rebuilt from its images."""
    fbw, wb, n_lists = p["fb_bits"], p["w_bits"], p["tab_depth"]
    n_taps = -(-p["kh"] // p["sh"]) * -(-p["kw"] // p["sw"]) if p["kind_id"] == 1 else 1
    fb_n = -(-p["n_out"] // lanes)
    out = np.zeros((n_lists, n_taps, fb_n * lanes), dtype=np.int64)
    tab = _words(folder / f"{p['name']}_tab.mem") if p["format"] != "dense" else None
    tew = p["ptr_bits"] + p["len_bits"]
    for lane in range(lanes):
        mem = _words(folder / f"{p['name']}_w{chr(97 + lane // 26)}{chr(97 + lane % 26)}.mem")
        for t in range(n_lists):
            if tab is None:
                ptr, n = t * n_taps * fb_n, n_taps * fb_n
            else:
                f = (tab[t] >> (lane * tew)) & ((1 << tew) - 1)
                ptr, n = f & ((1 << p["ptr_bits"]) - 1), f >> p["ptr_bits"]
            bits = [b for b in range(n.bit_length()) if n >> b & 1] if p["format"] == "bitmap" else []
            if bits:
                n = len(bits)
            pos = -1
            for j, x in enumerate(mem[ptr : ptr + n]):
                w = _signed(x & ((1 << wb) - 1), wb)
                if p["format"] == "csc":
                    tap, fb = x >> (fbw + wb), (x >> wb) & ((1 << fbw) - 1)
                    assert w != 0
                elif p["format"] == "rel":
                    pos = pos + 1 + (x >> wb)
                    tap, fb = pos >> fbw, pos & ((1 << fbw) - 1)
                elif p["format"] == "bitmap":
                    tap, fb = divmod(bits[j], fb_n)
                    assert w != 0
                else:
                    tap, fb = divmod(j, fb_n)
                if w:
                    assert out[t, tap, fb * lanes + lane] == 0, "a position stored twice"
                    out[t, tap, fb * lanes + lane] = w
    return out[:, :, : p["n_out"]]


def _golden_lists(g: GoldenModel, k: int) -> np.ndarray:
    la = g.layers[k]
    return conv_lists(la.w, tuple(la.stride)) if isinstance(la, Conv2D) else la.w.reshape(-1, la.n_out)[:, None, :]


@pytest.mark.parametrize("fmt", [*FORCED, "auto"])
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_stored_bits_are_the_image_bits(tmp_path: Path, fmt: str, model: str) -> None:
    from rl2fpga.quantize.compression import compression

    g, lanes = (_mlp(), 4) if model == "mlp" else (_cnn(), 3)
    d = generate(g, tmp_path, lanes=lanes, input_bytes_per_beat=8, fmt=fmt)
    total, per_layer = _measured(tmp_path)
    assert d.stored_bits == total
    assert {p.name: p.stored_bits for p in d.layers} == per_layer
    # the quantize-stage accounting reports the same figure for the same lanes and format
    comp = compression(g, lanes=lanes, fmt=fmt)
    assert comp["total"]["stored_bits"] == total
    assert {n: r["stored_bits"] for n, r in comp["layers"].items()} == per_layer
    assert {n: r["format"] for n, r in comp["layers"].items()} == {p.name: p.format for p in d.layers}
    if fmt != "auto":
        assert {p.format for p in d.layers} == {fmt}
    meta = json.loads((tmp_path / "design.json").read_text())
    for k, p in enumerate(meta["layers"]):
        assert np.array_equal(_decode(tmp_path, p, lanes), _golden_lists(g, k)), f"layer {p['name']}"


def test_fillers_bridge_long_gaps(tmp_path: Path) -> None:
    """One lane, one list whose nonzeros sit 0, 9, 40 apart with a 2-bit run: fillers."""
    g = random_model(np.random.default_rng(3), (2,), [("dense", 48)], sparsity=0.0)
    w = np.zeros((2, 48), dtype=np.int64)
    w[0, [0, 10, 41]] = [5, -3, 7]
    w[1, 47] = 1
    g.layers[0].w = w
    d = generate(g, tmp_path, lanes=1, input_bytes_per_beat=8, fmt="rel", run_bits=2)
    p = d.layers[0]
    # gaps 0, 9, 30 (list 0) and 47 (list 1), span 4: 0 + 2 + 7 + 11 fillers
    assert (p.format, p.run_bits, p.fillers) == ("rel", 2, 20)
    assert p.words == 4 + 20
    meta = json.loads((tmp_path / "design.json").read_text())
    assert np.array_equal(_decode(tmp_path, meta["layers"][0], 1), w[:, None, :])
    assert _measured(tmp_path)[0] == d.stored_bits


def test_auto_picks_the_smallest(tmp_path: Path) -> None:
    for sparsity in (0.0, 0.5, 0.95):
        g = _mlp(1, sparsity)
        sizes = {f: [p.stored_bits for p in generate(g, tmp_path / f, lanes=4, fmt=f).layers] for f in FORCED}
        auto = generate(g, tmp_path / "auto", lanes=4, fmt="auto")
        for k, p in enumerate(auto.layers):
            assert p.stored_bits == min(s[k] for s in sizes.values())
    # a dense layer picks dense (no index, no table)
    assert generate(_mlp(2, 0.0), tmp_path / "d", lanes=4).layers[0].format == "dense"


def test_bias_image_is_as_wide_as_the_biases(tmp_path: Path) -> None:
    """Biases -5..6 need 4 bits: the bias image holds 4 per lane, read back sign-extended."""
    g = _mlp(3)
    g.layers[0].b = np.resize(np.arange(-5, 7), 64)
    d = generate(g, tmp_path, lanes=4)
    assert d.layers[0].b_bits == 4
    words = _words(tmp_path / "l0_b.mem")
    got = [_signed((v >> (4 * lane)) & 15, 4) for v in words for lane in range(4)]
    assert got == [int(b) for b in g.layers[0].b]


def test_unknown_format_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(Rl2fpgaError) as e:
        generate(_mlp(), tmp_path, fmt="huffman")
    assert "rtl.format" in str(e.value) and "\n" not in str(e.value)


def test_old_design_json_loads(tmp_path: Path) -> None:
    """A design.json written before storage formats (no format keys, csc images) still loads."""
    generate(_mlp(), tmp_path, lanes=4, fmt="csc")
    meta = json.loads((tmp_path / "design.json").read_text())
    for p in meta["layers"]:
        for key in ("format", "format_id", "entry_bits", "run_bits", "list_len", "fillers", "stored_bits"):
            del p[key]
    for key in ("stored_bits", "formats"):
        del meta[key]
    (tmp_path / "design.json").write_text(json.dumps(meta))
    d = RtlDesign.load(tmp_path)
    assert [p.format for p in d.layers] == ["csc"] * 3
    assert len(d.mem_files) == 3 * (4 + 2)


def test_stray_image_is_caught(tmp_path: Path) -> None:
    """measure_images reads every .mem of the folder: a file without its declared width fails."""
    from rl2fpga.hls.engine.formats import measure_images

    d = generate(_mlp(), tmp_path, lanes=4)
    assert sum(measure_images(tmp_path).values()) == d.stored_bits
    (tmp_path / "l0_shift.mem").write_text("// generated\n3\n")
    with pytest.raises(Rl2fpgaError):
        measure_images(tmp_path)


# ------------------------------------------------------------------------------ co-simulation
def _cosim(name: str, g: GoldenModel, frames: np.ndarray, lanes: int, fmt: str, **kw) -> dict:
    from rl2fpga.hls.cosim.harness import run_engine

    root = _cosim_root(name, fmt)
    g.save(root / "golden")
    design = generate(g, root / "rtl", lanes=lanes, input_bytes_per_beat=8, fmt=fmt, **kw)
    assert {p.format for p in design.layers} == {fmt}
    res = run_engine(design, root / "golden", frames, root / "work", seed=1, idle=0.2, stall=0.2, resets=[25])
    assert res["frames"] == len(frames)
    assert res["mismatches"] == 0
    for f in res["per_frame"]:
        assert f["macs"] == f["golden_macs"], f"frame {f['index']}: MAC counter != golden"
        assert f["events"] == f["golden_events"]
    return res


def _cosim_root(name: str, fmt: str) -> Path:
    from rl2fpga.hls.cosim.harness import BUILD_ROOT

    return BUILD_ROOT / "tests" / f"formats_{name}_{fmt}"


def _have_verilator() -> bool:
    from rl2fpga.hls.cosim.harness import have_verilator

    return have_verilator()


verilator = [pytest.mark.slow, pytest.mark.verilator,
             pytest.mark.skipif(not _have_verilator(), reason="verilator not installed")]


@pytest.mark.parametrize("fmt", FORCED)
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_cosim_per_format(fmt: str, model: str) -> None:
    """Each format == golden, outputs and MAC counters (rl2fpga_tests/test_engine.py runs auto's
    mix); rel with a 2-bit run, so the lists have fillers."""
    from rl2fpga.train.frames import record_cartpole

    if model == "mlp":
        g = _mlp(7)
        g.set_thresholds([20, 2, 2])
        frames, _ = record_cartpole(50, seed=3)
        res = _cosim(model, g, frames, 4, fmt, **({"run_bits": 2} if fmt == "rel" else {}))
    else:
        g, rng = _cnn(), np.random.default_rng(5)
        x, fr = rng.integers(0, 256, size=(15, 13, 3)), []
        for _ in range(30):
            x = np.where(rng.random(x.shape) < 0.05, rng.integers(0, 256, size=x.shape), x)
            fr.append(x.astype(np.uint8))
        res = _cosim(model, g, np.stack(fr), 3, fmt, **({"run_bits": 2} if fmt == "rel" else {}))
    assert res["per_frame"][0]["macs"]
    if fmt == "rel":
        assert sum(p.fillers for p in RtlDesign.load(_cosim_root(model, fmt) / "rtl").layers) > 0


for _m in verilator:
    test_cosim_per_format = _m(test_cosim_per_format)


@pytest.mark.verilator
@pytest.mark.skipif(not _have_verilator(), reason="verilator not installed")
def test_rtl_step_checks_the_reported_figure(tmp_path: Path) -> None:
    """The rtl step reads every image back: equal to quantize's compression.stored_bits, or
    it fails naming the fix (here: rtl.lanes changed after quantize)."""
    from rl2fpga.artifacts import QuantizeCompression
    from rl2fpga.config import RunConfig
    from rl2fpga.quantize.compression import compression
    from rl2fpga.run import Run
    from rl2fpga.stages.rtl import rtl_step

    cfg = RunConfig(name="t")
    cfg.rtl.synth = False
    run = Run.create(cfg, path=tmp_path / "run")
    g = _mlp(4, 0.8)
    g.save(run.dir("quantize") / "golden")
    QuantizeCompression(compression(g, lanes=cfg.rtl.lanes, fmt=cfg.rtl.format)).save_in(run.dir("quantize"))
    run.mark_done("quantize", 0.0)
    rtl_step(run, cfg)
    summ = json.loads((run.path / "rtl" / "summary.json").read_text())
    assert summ["stored"]["bits"] == _measured(run.path / "rtl")[0] == summ["design"]["stored_bits"]
    assert summ["stored"]["equals_quantize_report"] is True
    cfg.rtl.lanes = 2
    with pytest.raises(Rl2fpgaError, match="rerun"):
        rtl_step(run, cfg)


@pytest.mark.parametrize("fmt", ["dense", "rel"])
def test_per_channel_rtl_step_counts_shift_images_and_cosims(tmp_path: Path, fmt: str) -> None:
    """Per-output-channel weight scales in a non-csc format: the rtl step's stored-bits check
    passes with the shift images counted once, as compression's scale_bits (the bits read from
    each written ``<layer>_shift.mem`` == that layer's scale_bits), and the engine == golden
    (outputs and MAC counters) with per-channel shifts."""
    from rl2fpga.artifacts import QuantizeCompression
    from rl2fpga.config import RunConfig
    from rl2fpga.hls.cosim.harness import run_engine
    from rl2fpga.quantize.compression import compression
    from rl2fpga.run import Run
    from rl2fpga.stages.rtl import rtl_step
    from rl2fpga.train.frames import record_cartpole

    cfg = RunConfig(name="t")
    cfg.rtl.synth, cfg.rtl.format = False, fmt
    run = Run.create(cfg, path=tmp_path / "run")
    g = random_model(np.random.default_rng(21), (4,), [("dense", 24), ("dense", 16), ("dense", 2)], sparsity=0.6,
                     in_fmt=Fmt(16, 5, True), w_bits=4, w_frac_spread=3, out_fmt=Fmt(16, 12, True))
    g.set_thresholds([20, 1, 1])
    assert all(la.per_channel for la in g.layers)
    comp = compression(g, lanes=cfg.rtl.lanes, fmt=fmt)
    g.save(run.dir("quantize") / "golden")
    QuantizeCompression(comp).save_in(run.dir("quantize"))
    run.mark_done("quantize", 0.0)
    rtl_step(run, cfg)
    out = run.path / "rtl"
    summ = json.loads((out / "summary.json").read_text())
    images = summ["stored"]["images"]
    assert summ["stored"]["equals_quantize_report"] is True
    assert summ["stored"]["bits"] == _measured(out)[0] == summ["design"]["stored_bits"] == comp["total"]["stored_bits"]
    for la in g.layers:
        name = f"{la.name}_shift.mem"
        assert (out / name).read_text().splitlines()[1].startswith("// image:")
        assert images[name] == comp["layers"][la.name]["scale_bits"] > 0
    assert sum(b for n, b in images.items() if n.endswith("_shift.mem")) == comp["total"]["scale_bits"]

    design = RtlDesign.load(out)
    assert {p.format for p in design.layers} == {fmt} and all(p.shift_bits for p in design.layers)
    frames, starts = record_cartpole(40, seed=5)
    res = run_engine(design, run.path / "quantize" / "golden", frames, _cosim_root("pc", fmt) / "work",
                     seed=1, idle=0.2, stall=0.2, resets=starts[1:])
    assert res["frames"] == len(frames) and res["mismatches"] == 0
    for f in res["per_frame"]:
        assert f["macs"] == f["golden_macs"], f"frame {f['index']}: MAC counter != golden"
        assert f["events"] == f["golden_events"]


for _m in verilator:
    test_per_channel_rtl_step_counts_shift_images_and_cosims = _m(test_per_channel_rtl_step_counts_shift_images_and_cosims)


def test_config_format_choices_are_the_engine_formats() -> None:
    import typing

    from rl2fpga.config import RtlConfig
    from rl2fpga.hls.engine.formats import CHOICES

    hints = typing.get_type_hints(RtlConfig)
    assert set(typing.get_args(hints["format"])) == set(CHOICES)


def test_every_image_part_is_counted(tmp_path: Path) -> None:
    """An extra image (e.g. per-channel shifts, part "scale") is counted by the accounting and
    must be written through the same list, else measure_images disagrees with the figure."""
    from rl2fpga.hls.engine import formats as fm

    g = _mlp()
    w3 = g.layers[0].w.reshape(-1, 64)[:, None, :]
    store = fm.choose(w3, 4, g.layers[0].w_fmt.bits)
    shift = fm.Image("l0_shift.mem", [0x21, 0x43, 0x65], 8, "scale")
    li = fm.layer_images("l0", store, np.zeros((16, 4), np.int64), 1, extra=(shift,))
    for im in li.images:
        (tmp_path / im.name).write_text(fm.image_text(im))
    assert li.bits("scale") == 24 and sum(fm.measure_images(tmp_path).values()) == li.bits()
