"""The run folder, typed: :class:`RunLayout` names every path of ``runs/<name>/`` and one small
class per step result reads and writes it (``load(layout)`` / ``save(layout)``).

The JSON on disk is what the steps always wrote (old run folders, ``scripts/readme_tables.py``
and the report template read it): each artifact keeps the whole document (``data``) and adds
typed accessors for the figures other code uses. Reading follows two rules:

* ``load(layout)``: ``None`` when the step did not write it (or wrote unreadable JSON); the
  report shows such a step as "not run", never a made-up number;
* ``require(layout)``: a one-line error naming the file and the step that writes it.

This module is a leaf (it imports only ``errors`` and ``fsutil``), so ``run``, ``pipeline``,
``manifest`` and ``report`` can all import it at module level.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_write_json

#: The pipeline's steps, in order; each owns the folder of the same name in a run.
STEP_ORDER: list[str] = ["train", "prune", "quantize", "analyze", "hls", "rtl", "cosim", "board", "da4ml", "report"]


#: The deployable trained model inside ``train/`` (also inside each ``prune/level_XX/``).
TRAIN_MODEL = "model.keras"


def read_json(path: Path) -> Any:
    """The JSON document at ``path``, or None when it is missing or unreadable (the report's rule:
    a step that did not run shows as not run)."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class RunLayout:
    """Every path of one run folder. Pure names: nothing is created or read here."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def step(self, name: str) -> Path:
        """The folder of step ``name`` (one of :data:`STEP_ORDER`)."""
        return self.root / name

    def require(self, step: str, *paths: Path) -> None:
        """One-line error for the first of ``paths`` (written by ``step``) that is missing."""
        for p in paths:
            if not p.exists():
                raise Rl2fpgaError(f"{p} is missing; run `rl2fpga {step} {self.root}` first")

    def done_marker(self, name: str) -> Path:
        return self.step(name) / ".done"

    def file(self, kind: type[Artifact]) -> Path:
        """Where the artifact class ``kind`` lives in this run."""
        return self.step(kind.STEP) / kind.FILE

    def summary_of(self, name: str) -> Path:
        """``<step>/summary.json``: every step's headline figures."""
        return self.step(name) / "summary.json"

    # -- top level ------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def run_log(self) -> Path:
        return self.root / "run.log"

    # -- train ------------------------------------------------------------------------------
    @property
    def train_model(self) -> Path:
        return self.step("train") / TRAIN_MODEL

    @property
    def train_init_model(self) -> Path:
        """Initial weights, for rewinding (prune.rewind=init)."""
        return self.step("train") / "init_model.keras"

    @property
    def train_checkpoints(self) -> Path:
        return self.step("train") / "checkpoints"

    @property
    def train_agent(self) -> Path:
        """SAC: the whole agent (actor, critics), for fine-tuning."""
        return self.step("train") / "agent"

    @property
    def train_env(self) -> Path:
        return self.file(TrainEnv)

    @property
    def train_eval(self) -> Path:
        return self.file(TrainEval)

    @property
    def train_metrics(self) -> Path:
        return self.file(TrainMetrics)

    @property
    def train_imported(self) -> Path:
        """Present when the policy was imported (``rl2fpga import``), not trained."""
        return self.file(ImportedRecord)

    # -- prune ------------------------------------------------------------------------------
    @property
    def prune_levels(self) -> Path:
        return self.file(PruneLevels)

    @property
    def prune_selected(self) -> Path:
        return self.file(PruneSelected)

    @property
    def prune_partial(self) -> Path:
        """Gradual pruning's finished levels while the step runs (a killed step resumes from
        them); removed when the step succeeds."""
        return self.root / ".prune.partial"

    # -- quantize ---------------------------------------------------------------------------
    @property
    def quantize_golden(self) -> Path:
        """The golden integer model folder (``formats.json``, ``weights.npz``)."""
        return self.root / "quantize" / "golden"

    @property
    def quantize_formats(self) -> Path:
        return self.quantize_golden / "formats.json"

    @property
    def quantize_qmodel(self) -> Path:
        return self.root / "quantize" / "qmodel.h5"

    @property
    def quantize_compression(self) -> Path:
        return self.file(QuantizeCompression)

    @property
    def quantize_compression_md(self) -> Path:
        return self.root / "quantize" / "compression.md"

    @property
    def quantize_eval(self) -> Path:
        return self.file(QuantizeEval)

    # -- analyze ----------------------------------------------------------------------------
    @property
    def analyze_layers(self) -> Path:
        return self.file(AnalyzeLayers)

    @property
    def analyze_sweep(self) -> Path:
        return self.file(AnalyzeSweep)

    @property
    def analyze_frontier(self) -> Path:
        return self.file(AnalyzeFrontier)

    @property
    def analyze_sweep_png(self) -> Path:
        return self.root / "analyze" / "sweep.png"

    # -- hls, rtl, cosim --------------------------------------------------------------------
    @property
    def hls_csim(self) -> Path:
        return self.file(HlsCsim)

    @property
    def rtl_design(self) -> Path:
        return self.root / "rtl" / "design.json"

    @property
    def rtl_resources(self) -> Path:
        return self.file(RtlResources)

    @property
    def cosim_frames(self) -> Path:
        return self.file(CosimFrames)

    @property
    def cosim_latency(self) -> Path:
        return self.file(CosimLatency)

    # -- board, da4ml -----------------------------------------------------------------------
    def board_summary_for(self, target: str) -> Path:
        return self.root / "board" / f"summary_{target}.json"

    def board_latency_for(self, target: str) -> Path:
        return self.root / "board" / f"latency_{target}.json"

    @property
    def board_build(self) -> Path:
        return self.root / "board" / "build.json"

    @property
    def da4ml_frames(self) -> Path:
        return self.file(Da4mlFrames)

    @property
    def da4ml_resources(self) -> Path:
        return self.file(Da4mlResources)

    @property
    def da4ml_board(self) -> Path:
        return self.file(Da4mlBoard)


# ---------------------------------------------------------------------------- step results

A = TypeVar("A", bound="Artifact")


def pick(d: Any, *paths: str, default: Any = None) -> Any:
    """The first dotted path present (and not None) in ``d``, e.g. ``pick(s, "rtl.lut", "lut")``."""
    for p in paths:
        node = d
        for part in p.split("."):
            if not (isinstance(node, dict) and part in node):
                break
            node = node[part]
        else:
            if node is not None:
                return node
    return default


@dataclass(frozen=True)
class Artifact:
    """One JSON file a step writes: ``data`` is the whole document, as on disk."""

    STEP: ClassVar[str]
    FILE: ClassVar[str] = "summary.json"

    data: Any = field(default_factory=dict)

    @classmethod
    def path(cls, layout: RunLayout) -> Path:
        return layout.file(cls)

    @classmethod
    def load(cls: type[A], layout: RunLayout) -> A | None:
        """The artifact, or None when the step did not write it (or it is unreadable)."""
        data = read_json(cls.path(layout))
        return None if data is None else cls(data)

    @classmethod
    def require(cls: type[A], layout: RunLayout) -> A:
        """The artifact, or a one-line error naming the file and the step that writes it."""
        p = cls.path(layout)
        layout.require(cls.STEP, p)
        data = read_json(p)
        if data is None:
            raise Rl2fpgaError(f"{p} is corrupt (not JSON); rerun `rl2fpga {cls.STEP} {layout.root}`")
        return cls(data)

    @classmethod
    def exists(cls, layout: RunLayout) -> bool:
        return cls.path(layout).exists()

    def save(self, layout: RunLayout) -> Path:
        """Write into the run folder (atomically)."""
        p = self.path(layout)
        atomic_write_json(p, self.data)
        return p

    def save_in(self, step_dir: Path) -> Path:
        """Write into ``step_dir``: the step's folder, or the temporary folder that replaces it
        when the step succeeds (:func:`rl2fpga.fsutil.atomic_dir`)."""
        p = Path(step_dir) / self.FILE
        atomic_write_json(p, self.data)
        return p

    def get(self, *paths: str, default: Any = None) -> Any:
        return pick(self.data, *paths, default=default)


class TrainSummary(Artifact):
    STEP = "train"

    @property
    def eval_return_mean(self) -> float | None:
        return self.get("eval_return_mean")


class TrainEval(Artifact):
    """``train/eval.json``: the greedy evaluation's returns."""

    STEP, FILE = "train", "eval.json"

    @property
    def returns(self) -> list[float]:
        return list(self.get("returns", default=[]))


class TrainMetrics(Artifact):
    STEP, FILE = "train", "metrics.json"


class ImportedRecord(Artifact):
    STEP, FILE = "train", "imported.json"


class TrainEnv(Artifact):
    """``train/env.json``: the environment's spec (observation and action spaces)."""

    STEP, FILE = "train", "env.json"


class PruneSummary(Artifact):
    STEP = "prune"


class PruneLevels(Artifact):
    """``prune/levels.json``: one entry per sparsity level (level, sparsity, returns)."""

    STEP, FILE = "prune", "levels.json"

    @property
    def levels(self) -> list[dict[str, Any]]:
        return list(self.get("levels", default=[]))


class PruneSelected(Artifact):
    STEP, FILE = "prune", "selected.json"

    @property
    def level(self) -> int:
        return int(self.data["level"])

    @property
    def sparsity(self) -> float:
        return float(self.data["sparsity"])


class QuantizeSummary(Artifact):
    """``quantize/summary.json``: the selected, quantized level."""

    STEP = "quantize"

    @property
    def compression(self) -> dict[str, Any]:
        return self.get("compression", default={})


class QuantizeCompression(Artifact):
    """``quantize/compression.json``: stored bits per layer and in total."""

    STEP, FILE = "quantize", "compression.json"


class QuantizeEval(Artifact):
    """``quantize/eval.json``: the golden agent's episodes without and with delta updates."""

    STEP, FILE = "quantize", "eval.json"


class AnalyzeSummary(Artifact):
    STEP = "analyze"

    def threshold_key(self, T: float) -> str | None:
        """The key of ``T`` in the per-threshold tables (keys are the T values as text)."""
        for k in self.get("per_threshold", default={}):
            try:
                if abs(float(k) - T) < 1e-12:
                    return str(k)
            except ValueError:
                continue
        return None

    @property
    def per_level(self) -> list[dict[str, Any]]:
        return list(self.get("per_level", default=[]))


class AnalyzeLayers(Artifact):
    STEP, FILE = "analyze", "layers.json"


class AnalyzeSweep(Artifact):
    """``analyze/sweep.json``: the compression sweep over levels x weight bits."""

    STEP, FILE = "analyze", "sweep.json"


class AnalyzeFrontier(Artifact):
    """``analyze/frontier.json``: the compression frontier (every point, the Pareto front's ids)."""

    STEP, FILE = "analyze", "frontier.json"


class HlsSummary(Artifact):
    STEP = "hls"


class HlsCsim(Artifact):
    """``hls/csim.json``: C simulation vs golden, delta stage active and inactive."""

    STEP, FILE = "hls", "csim.json"


class RtlSummary(Artifact):
    STEP = "rtl"


class RtlResources(Artifact):
    """``rtl/resources.json``: the yosys estimate of the engine."""

    STEP, FILE = "rtl", "resources.json"


class CosimSummary(Artifact):
    STEP = "cosim"


class CosimLatency(Artifact):
    """``cosim/latency.json``: cycles per frame over real episodes (median, p99, bound)."""

    STEP, FILE = "cosim", "latency.json"


class CosimFrames(Artifact):
    """``cosim/frames.json``: one record per co-simulated frame (cycles, MACs, golden MACs)."""

    STEP, FILE = "cosim", "frames.json"

    @property
    def frames(self) -> list[dict[str, Any]]:
        return list(self.data or [])

    def mac_mismatches(self) -> int:
        return sum(1 for f in self.frames if f.get("macs") != f.get("golden_macs"))


class BoardSummary(Artifact):
    """``board/summary.json``: the latest closed loop (also kept as ``summary_<target>.json``)."""

    STEP = "board"

    def save_for_target(self, layout: RunLayout) -> None:
        """``summary_<target>.json`` (kept per target) and ``summary.json`` (the latest)."""
        atomic_write_json(layout.board_summary_for(str(self.data["target"])), self.data)
        self.save(layout)


class BoardLatency(Artifact):
    """``board/latency_<target>.json``: per-step cycles, host latency and MACs."""

    STEP = "board"

    @classmethod
    def path_for(cls, layout: RunLayout, target: str) -> Path:
        return layout.board_latency_for(target)

    def save_for_target(self, layout: RunLayout, target: str) -> Path:
        p = self.path_for(layout, target)
        atomic_write_json(p, self.data)
        return p


class Da4mlSummary(Artifact):
    STEP = "da4ml"


class Da4mlFrames(Artifact):
    STEP, FILE = "da4ml", "frames.json"


class Da4mlResources(Artifact):
    STEP, FILE = "da4ml", "resources.json"


class Da4mlBoard(Artifact):
    """``da4ml/board.json``: closed-loop episodes on the da4ml design."""

    STEP, FILE = "da4ml", "board.json"


class ReportRecord(Artifact):
    """``report/summary.json``: where the report went."""

    STEP = "report"


@dataclass(frozen=True)
class RunArtifacts:
    """Every step result of one run, as the report reads them (None: not run, or stale)."""

    train: TrainSummary | None
    train_eval: TrainEval | None
    train_metrics: TrainMetrics | None
    imported: ImportedRecord | None
    levels: PruneLevels | None
    quantize: QuantizeSummary | None
    compression: QuantizeCompression | None
    analyze: AnalyzeSummary | None
    hls: HlsSummary | None
    rtl: RtlSummary | None
    cosim: CosimSummary | None
    latency: CosimLatency | None
    frames: CosimFrames | None
    board: BoardSummary | None
    da4ml: Da4mlSummary | None

    @classmethod
    def load(cls, layout: RunLayout, skip: set[str] | frozenset[str] = frozenset()) -> RunArtifacts:
        """Every artifact; those of the steps in ``skip`` (stale results) read as not run."""

        def get(kind: type[A]) -> A | None:
            return None if kind.STEP in skip else kind.load(layout)

        return cls(train=get(TrainSummary), train_eval=get(TrainEval), train_metrics=get(TrainMetrics),
                   imported=get(ImportedRecord), levels=get(PruneLevels), quantize=get(QuantizeSummary),
                   compression=get(QuantizeCompression), analyze=get(AnalyzeSummary), hls=get(HlsSummary),
                   rtl=get(RtlSummary), cosim=get(CosimSummary), latency=get(CosimLatency), frames=get(CosimFrames),
                   board=get(BoardSummary), da4ml=get(Da4mlSummary))


def data(a: Artifact | None, default: Any = None) -> Any:
    """``a.data``, or ``default`` ({} unless given) when the artifact is absent."""
    if a is None or not a.data:
        return {} if default is None else default
    return a.data
