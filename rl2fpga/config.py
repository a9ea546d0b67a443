"""Typed pipeline configuration: dataclasses <-> YAML.

Every field has a docstring (the string literal under it); ``rl2fpga config`` prints them, and
``--set section.field=value`` overrides any of them on the command line. Unknown keys and values
of the wrong type are errors, never silently ignored.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from rl2fpga.errors import Rl2fpgaError


@dataclass
class DQNConfig:
    learning_rate: float = 1e-3
    """Adam learning rate."""
    buffer_size: int = 100_000
    """Replay capacity in transitions (Atari frames are stored once, as uint8)."""
    batch_size: int = 64
    """Minibatch size per gradient step."""
    gamma: float = 0.99
    """Discount factor."""
    learning_starts: int = 1000
    """Environment steps of random play before learning starts."""
    train_freq: int = 256
    """Environment steps between bursts of gradient steps."""
    gradient_steps: int = 128
    """Gradient steps per burst."""
    target_update_interval: int = 256
    """Environment steps between target-network copies."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start."""
    exploration_final_eps: float = 0.04
    """Epsilon after the decay."""
    exploration_steps: int = 8000
    """Environment steps over which epsilon decays linearly."""
    double_dqn: bool = True
    """Use Double DQN targets (online net picks, target net evaluates)."""
    huber: bool = True
    """Huber loss instead of squared error."""
    max_grad_norm: float = 10.0
    """Gradient clipping by global norm."""
    num_envs: int = 1
    """Copies of the training environment stepped together (> 1: a Gymnasium vector env over the
    same wrappers, one batched action selection per step of all copies, a minibatch's stacks packed in one
    uint8 array). Every count (total_steps, learning_starts, train_freq,
    target_update_interval, exploration_steps, eval_every) is in agent steps over all copies."""
    vector_mode: Literal["sync", "thread", "async"] = "sync"
    """num_envs > 1: sync steps the copies, then learns; thread steps them in a background
    thread and async in env_workers worker processes while the learner runs the gradient steps
    (which then sample the replay as it was before that step of all copies). thread and async
    give the same run, bit for bit; async leaves this process's GIL to the learner."""
    env_workers: int = 1
    """vector_mode async: worker processes, each stepping an equal share of the num_envs copies."""
    learner_dtype: Literal["float32", "bfloat16"] = "float32"
    """Compute type of the learner's forward and backward passes; bfloat16 uses oneDNN's
    AVX512-BF16 (or AMX) kernels. The weights, the acting network and the saved model stay float32."""


@dataclass
class SACConfig:
    learning_rate: float = 3e-4
    """Adam learning rate for the actor and the temperature (and the critics unless set below)."""
    critic_learning_rate: float | None = None
    """Adam learning rate for the twin critics; None uses learning_rate (cleanrl uses 1e-3)."""
    buffer_size: int = 300_000
    """Replay capacity in transitions."""
    batch_size: int = 256
    """Minibatch size."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak averaging rate for the target critics."""
    learning_starts: int = 5000
    """Environment steps of uniform random actions before learning starts."""
    train_freq: int = 1
    """Environment steps between gradient steps."""
    gradient_steps: int = 1
    """Gradient steps per update."""
    init_alpha: float = 1.0
    """Initial entropy temperature (learned; target entropy = -action_dim)."""
    critic_hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden widths of each Q network."""


@dataclass
class EnvConfig:
    id: str = "CartPole-v1"
    """Gymnasium id: CartPole-v1, Acrobot-v1, LunarLander-v3, Pendulum-v1, ALE/Breakout-v5,
    Hopper-v5, ..."""
    max_episode_steps: int | None = None
    """Override the environment's time limit (None keeps it)."""
    frame_skip: int = 4
    """Atari: agent step = this many emulator frames (max-pooled over the last two)."""
    noop_max: int = 30
    """Atari: up to this many no-ops at reset."""
    sticky_actions: float = 0.25
    """Atari: repeat_action_probability (v5 default 0.25)."""
    eval_workers: int = 1
    """Processes that play a seeded evaluation of the golden model or the float DeltaNetwork
    (quantize, analyze) side by side, each a contiguous share of the episodes; the returns and
    counts are the same for any number (1: in this process)."""
    kwargs: dict[str, bool | int | float | str] = field(default_factory=dict)
    """Keyword arguments for the environment's constructor (gymnasium.make), scalars only, e.g.
    {include_cfrc_ext_in_observation: false} for Ant-v5's 27 observations; file or render
    options are refused."""


@dataclass
class TrainConfig:
    algo: Literal["dqn", "sac"] = "dqn"
    """dqn for discrete actions, sac for continuous ones."""
    network: Literal["mlp", "atari", "nature"] = "mlp"
    """mlp; atari = the 2023 paper's CNN; nature = the Nature DQN CNN."""
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden widths of an MLP policy."""
    total_steps: int = 100_000
    """Environment steps of training (at most: early stopping usually ends CartPole sooner)."""
    eval_episodes: int = 30
    """Seeded episodes of greedy / deterministic evaluation (every prune level is judged on
    the same ones)."""
    eval_every: int = 2_500
    """Environment steps between evaluations during training (0: only at the end)."""
    early_stop_return: float | None = 500.0
    """Stop once a periodic evaluation reaches this mean return (None: never)."""
    checkpoint_every: int = 0
    """Environment steps between checkpoints (0: only the final model)."""
    dqn: DQNConfig = field(default_factory=DQNConfig)
    """DQN hyperparameters."""
    sac: SACConfig = field(default_factory=SACConfig)
    """SAC hyperparameters."""


@dataclass
class PruneConfig:
    method: Literal["imp", "gradual", "during_training", "student", "none"] = "student"
    """imp = iterative magnitude pruning with rewinding; gradual = cubic schedule (tfmot) on the
    trained agent; during_training = one training run per target in prune.sparsities from the
    train config with gradual magnitude pruning inside it (cubic schedule from begin_step to
    end_step, allocation, frequency; the deployed network: DQN's Q-network, SAC's actor);
    student = distil the dense agent into narrower MLPs (student_hidden; behaviour cloning +
    DAgger on standardised inputs), optionally magnitude-pruned further (student_prune_rounds)."""
    scope: Literal["layer", "global"] = "layer"
    """Rank weights per layer or over the whole network."""
    rate: float = 0.2
    """IMP: fraction of the remaining weights pruned each round."""
    rounds: int = 10
    """IMP: rounds M (sparsity 1 - (1-rate)^i)."""
    rewind: Literal["init", "checkpoint"] = "checkpoint"
    """Rewind to the initial weights or to the earliest checkpoint (10 % of training: the
    "late rewinding" of Frankle et al. 2019, a shorter way back to a working agent)."""
    retrain_steps: int = 30_000
    """Environment steps of retraining per round (IMP) or in all (gradual); training's early
    stopping (train.early_stop_return) ends a round sooner."""
    retrain_retries: int = 1
    """IMP: retrain a round again (another exploration seed) when its return falls below
    keep_return_fraction of the dense return; the better attempt is kept."""
    final_sparsity: float = 0.9
    """Gradual: final sparsity s_f of the cubic schedule."""
    sparsities: list[float] = field(default_factory=lambda: [0.8, 0.9, 0.95])
    """during_training: the final sparsity of each level's training run (level i = sparsities[i-1];
    level 0 is the dense train run); each value in [0, 1)."""
    allocation: Literal["global", "uniform", "erk"] = "erk"
    """during_training and gradual: per-layer sparsity; uniform = every layer the target (gradual:
    tfmot's per-layer masks), erk =
    Erdos-Renyi-Kernel (density ~ sum(shape) / prod(shape), scaled to the target in weight
    count, layers over density 1 kept dense), global = one magnitude ranking over all layers."""
    begin_step: int | None = None
    """during_training: agent step where the cubic schedule starts (None: 20 % of train.total_steps)."""
    end_step: int | None = None
    """during_training: agent step where it reaches the final sparsity (None: 80 % of
    train.total_steps); evaluations for model selection and early stopping start there."""
    frequency: int = 1000
    """during_training: agent steps between mask updates (from begin_step, and at end_step)."""
    keep_return_fraction: float = 0.95
    """Select the sparsest level whose return keeps this fraction of the dense agent's."""
    prune_output_layer: bool = True
    """Also prune the last (output) layer."""
    finetune: Literal["rl", "distill"] = "rl"
    """How a pruned network recovers: rl = retrain in the environment (retrain_steps);
    distill = learn the dense agent's outputs on states the dense and the pruned agent visit."""
    distill_steps: int = 5000
    """distill: Adam steps per level and per round (the dense agent's states, then
    distill_dagger_rounds rounds each adding the pruned agent's own states)."""
    distill_episodes: int = 5
    """distill: episodes whose states are distilled on (per round)."""
    distill_max_steps: int | None = None
    """distill: cap on agent steps per distillation episode (None: whole episodes; Atari frames
    are kept as uint8, 28 KB per state)."""
    distill_temperature: float | None = None
    """distill, DQN: learn the dense agent's softmax(Q / T) at this temperature T (cross-entropy,
    policy distillation) instead of its Q-values (squared error; None)."""
    distill_dagger_rounds: int = 1
    """distill: DAgger rounds after the round on the dense agent's states; each adds the states
    the pruned agent now visits (distill_episodes more, labelled by the dense agent) and runs
    distill_steps more Adam steps."""
    distill_rl_steps: int = 0
    """distill: environment steps of RL fine-tuning after the distillation (masks kept, no
    epsilon-random phase, as gradual pruning's retraining; 0: none)."""
    student_hidden: list[list[int]] = field(default_factory=lambda: [[8, 8], [16, 16]])
    """student: hidden widths of each candidate student MLP (e.g. [[8, 8], [16, 16]]); each is
    a level, and the selection keeps the one with the fewest nonzero weights that keeps the return."""
    student_dagger_rounds: int = 3
    """student: DAgger rounds after behaviour cloning on the teacher's states (each adds the
    states the student visits, labelled by the teacher, then distill_steps more Adam steps)."""
    student_prune_rounds: int = 0
    """student: magnitude-pruning rounds of each student (rate prune.rate of the remaining
    weights per round, recovered by distillation), each a further level (0: dense students)."""
    student_temperature: float | None = 1.0
    """student, DQN: learn the teacher's softmax(Q / T) at this temperature (cross-entropy); the
    student's outputs are then action logits whose differences survive 4-bit QAT (None: the
    Q-values by squared error, which 4-bit QAT of CartPole students did not keep)."""
    student_standardize: bool = True
    """student: train on standardised inputs (per-input mean and 1/std of the teacher's states)
    and fold the standardisation into the first layer's weights and bias, so every back end
    applies it bit-exactly and its bits are counted with that layer."""
    student_action_loss: bool = True
    """student, SAC: distil the actions the deployed actor takes (squared error of tanh of the
    means) instead of the means themselves (a mean deep in tanh's saturation needs no exact copy;
    a Hopper 11-16-16-3 student: 3,188 with it, 2,063 without, teacher 2,284, 30 episodes)."""
    student_visit_noise: float = 0.0
    """student, SAC: Gaussian action noise (std as a fraction of the action half-range) while the
    teacher and the students play the episodes whose states are distilled (DART): the students
    learn the states slightly-off actions reach, so quantization errors do not push them off
    (0: off)."""
    student_select_episodes: int = 0
    """student: after behaviour cloning and after each DAgger round, play this many validation
    episodes (seeds other than the evaluation's) and keep the round whose student scored best
    (0: keep the last round)."""


@dataclass
class QuantizeConfig:
    method: Literal["qat", "ptq"] = "qat"
    """qat = quantization-aware fine-tuning (distillation); ptq = post-training."""
    weight_bits: int = 4
    """Bits of every weight (signed)."""
    act_bits: int = 8
    """Bits of every hidden activation (unsigned after ReLU)."""
    input_bits: int = 8
    """Bits of the network input (Atari pixels are p * 2^-8)."""
    bias_bits: int = 16
    """Bits of the biases."""
    output_bits: int = 16
    """Bits of the Q-values / actor means."""
    qat_steps: int = 2000
    """Distillation steps of quantization-aware fine-tuning."""
    threshold: float = 0.02
    """Delta threshold T in input units (standardised units when the input is standardised,
    see input_standardize); T_int = floor(T / LSB) with the strict comparison."""
    delta_episodes: int = 30
    """Seeded episodes to evaluate the selected level with and without delta updates."""
    float_input_bits: int = 12
    """Bits of a float (classic-control, MuJoCo) observation: signed, covering the range the
    agent visits; pixels always use 8 bits (p * 2^-8)."""
    calib_episodes: int = 5
    """Episodes of the float agent whose states calibrate the formats and drive distillation."""
    calib_max_steps: int = 1000
    """Cap on steps per calibration episode."""
    check_states: int = 1000
    """Visited states on which the step checks golden == QKeras on integers."""
    level: int | None = None
    """Deploy this prune level (its index in prune/levels.json, 0 = dense) instead of the prune
    step's selection, with no fallback; null = the selection. For a level the selection rule
    passes over (e.g. a less sparse one whose return with delta updates must stay closer to
    dense)."""
    fallback_levels: int = 2
    """When the selected level's golden agent with delta updates keeps less than
    prune.keep_return_fraction of the dense return, try up to this many less sparse levels."""
    dagger_rounds: int = 1
    """QAT: rounds of adding the states the quantized agent itself visits (labelled by the float
    agent) to the distillation set, each followed by qat_steps more steps (0: off)."""
    qat_action_loss: bool = True
    """QAT of a continuous (SAC) actor: match the actions, tanh of the means, instead of the means
    themselves (a mean far into tanh's flat tail then costs nothing; the loss goes to the means
    the actions depend on). false: the loss on the means (the runs before this key)."""
    input_standardize: bool = True
    """When the prune level carries an input standardisation (students do): apply it in the
    golden model's input format (per input an integer offset and a power-of-two scale, stored
    in formats.json, applied by every back end and counted in the stored bits); false keeps
    it folded into the first layer's weights and bias."""
    advantage_weight: float = 0.0
    """QAT of a DQN: weight of an extra distillation error on Q-values centred per state (the
    differences that choose the action); 0 = plain Q-value error (10 was worse on CartPole)."""
    per_channel: bool = False
    """Per-output-channel power-of-two weight scales (each channel its own step, carried
    bit-exactly through the golden model, QKeras, hls4ml and the engine); false = one step per
    layer, set by its largest weight."""
    layer_weight_bits: list[int] = field(default_factory=list)
    """Mixed precision: the weight bits of each weight layer in order (2..16); empty = weight_bits
    for every layer."""
    layer_thresholds: list[float] = field(default_factory=list)
    """Delta threshold T of each layer's input in order (float units of that input, as
    quantize.threshold; 0 = that layer's inputs are sent whenever they change at all); empty =
    quantize.threshold for every layer. Breakout [0.01, 0.01, 0.01, 0, 0]: the fully connected
    layers' inputs are small activations for which T = 0.01 is a coarse step (its 8-bit golden
    agent lost 30 % of its return with T everywhere, none with these)."""

    def deployed_threshold(self) -> float | list[float]:
        """The T the deployed model runs with: layer_thresholds when given, else threshold."""
        return list(self.layer_thresholds) if self.layer_thresholds else self.threshold


@dataclass
class AnalyzeConfig:
    thresholds: list[float] = field(default_factory=lambda: [0.0, 0.001, 0.005, 0.01, 0.05])
    """Delta thresholds T (input units) swept in the analysis."""
    episodes: int = 2
    """Real episodes recorded for the analysis."""
    max_steps: int = 500
    """Cap on agent steps per analysed episode."""
    level_episodes: int | None = None
    """Episodes of every prune level's float DeltaNetwork (T = quantize.threshold) in closed loop,
    the per-level return with delta updates (Fig. 6), on the evaluation seeds with no cap but the
    environment's time limit (env.max_episode_steps); set it to train.eval_episodes to judge every
    level on the episodes its float return was (Atari: 30). None: analyze.episodes episodes
    capped at analyze.max_steps (cheap, noisy)."""
    threshold_episodes: int | None = None
    """Episodes of the threshold study (Fig. 8 of the 2023 paper for Krull and SpaceInvaders): the
    selected level's float DeltaNetwork at every T of analyze.thresholds in closed loop, whole
    episodes on the evaluation seeds (as level_episodes). None: analyze.episodes episodes capped at
    analyze.max_steps (cheap, noisy)."""
    sweep_bits: list[int] = field(default_factory=list)
    """Compression sweep: quantize every prune level that keeps the return with its weights at
    each of these widths (e.g. [8, 6, 4]; activations stay at quantize.act_bits) and report
    the largest compression that still keeps it; [] skips."""
    frontier: bool = True
    """Compression frontier (summary compression.frontier, the report's return-vs-bytes plot):
    quantize every prune level of frontier_levels at every width of frontier_bits as the quantize
    step does, play each as the golden agent with delta updates (T = quantize.threshold,
    quantize.delta_episodes episodes on the evaluation seeds), size it in every format of
    frontier_formats from the engine's memory images, and keep the Pareto front of return
    (max), stored bytes and significant multiplications (min); false skips. Costs one
    quantization + evaluation per (level, width): about 6 CPU-seconds each for the default
    CartPole run (8 of them: +48 s), ~500 s each for Breakout."""
    frontier_bits: list[int] = field(default_factory=lambda: [8, 4, 2])
    """Compression frontier: uniform weight widths (2..16) each level is quantized at; the
    quantize step's own model (quantize.weight_bits / layer_weight_bits) is always a point."""
    frontier_levels: list[int] = field(default_factory=list)
    """Compression frontier: prune levels to include (indices of prune/levels.json); [] = every
    level, the ones that lose the return included (they show the trade-off; a point that
    loses it stays on the front only if nothing else is as small or as cheap)."""
    frontier_formats: list[str] = field(default_factory=lambda: ["auto", "csc", "rel", "bitmap", "dense"])
    """Compression frontier: storage formats each point is sized in (auto = the smallest per
    layer, else one format for every layer, as rtl.format); the return does not depend on the
    format, so each (level, width) is played once."""


@dataclass
class HlsConfig:
    backend: Literal["Vitis", "Vivado", "VivadoAccelerator"] = "Vitis"
    """hls4ml backend."""
    board: str = "pynq-z2"
    """Board for VivadoAccelerator."""
    part: str = "xc7z020clg400-1"
    """FPGA part."""
    clock_period_ns: float = 10.0
    """Target clock period."""
    strategy: Literal["Latency", "Resource"] = "Latency"
    """hls4ml strategy."""
    reuse_factor: int | None = None
    """Reuse factor for every layer (None: chosen per layer size)."""
    csim_frames: int = 500
    """Consecutive real frames compared against the golden model in C simulation."""
    build: bool = True
    """Run the vendor build when the tool is on PATH."""
    cosim: bool = False
    """Also run C/RTL co-simulation in the vendor build (slow)."""
    compression: bool = False
    """hls4ml Compression (zero weights not stored); only with strategy Resource, which crashes
    with it in hls4ml 1.3.0, so it is refused."""
    max_accum_bits: int = 48
    """Widest accumulator allowed (DSP48 P register); a layer needing more is an error."""
    max_mults_per_layer: int = 4096
    """Latency strategy: multipliers per layer (per output pixel for a convolution) before the
    reuse factor grows."""


@dataclass
class RtlConfig:
    lanes: int = 4
    """Parallel MAC lanes of the sparse delta engine (of every layer, unless rtl.layer_lanes)."""
    layer_lanes: list[int] = field(default_factory=list)
    """MAC lanes of each layer in order (1..64), as hls4ml's per-layer reuse factor: more for a
    layer whose fan-out lists are long (a large fully connected layer), fewer for a small output
    layer; empty = rtl.lanes for every layer. The cosim step's latency.json "stages" shows which
    layer a frame waits on."""
    input_bytes_per_beat: int = 8
    """Width of the AXI4-Stream input in bytes."""
    clock_mhz: float = 100.0
    """Clock used to turn cycles into microseconds."""
    synth: bool = True
    """Run yosys synth_xilinx for the resource estimate."""
    frame_stack: bool = True
    """Atari: keep the frame stack in the engine, the host sends only the newest frame."""
    schedule: Literal["frame", "rows"] = "frame"
    """frame: every layer walks its changed accumulators once its input's end marker has
    passed; rows (frame stack only): a conv layer walks each output row as soon as the input
    rows it reads are in, while the frame still streams in."""
    row_order: Literal["top_down", "bottom_up"] = "top_down"
    """Order in which the host sends each frame's rows (frame stack only). With the rows
    schedule, what is left after the last beat is the chain of the last rows: bottom_up puts
    Breakout's score and bricks, which change least, last."""
    format: Literal["auto", "csc", "rel", "bitmap", "dense"] = "auto"
    """Weight storage format of every layer: csc (absolute indices), rel (relative indices with
    filler entries), bitmap (a bit per position + the nonzero values), dense (values only); auto
    picks the smallest per layer by the bits of its memory images."""

    @property
    def lanes_arg(self) -> int | list[int]:
        """What the generator and the size accounting take: rtl.layer_lanes, else rtl.lanes."""
        return list(self.layer_lanes) if self.layer_lanes else self.lanes


@dataclass
class CosimConfig:
    frames: int = 200
    """Consecutive real frames through the whole-network co-simulation."""
    backpressure: float = 0.3
    """Probability of a stall cycle on each stream."""


@dataclass
class BoardConfig:
    target: Literal["reference", "hls-csim", "emulator", "pynq"] = "emulator"
    """Back end choosing the actions."""
    episodes: int = 3
    """Seeded episodes played in closed loop."""
    max_steps: int = 500
    """Cap on steps per episode."""
    action: Literal["run", "build"] = "run"
    """run: play episodes on the target; build: write the deploy bundle and the Vivado project
    (and run Vivado when it is on PATH)."""
    emulator_engine: Literal["auto", "golden", "verilator"] = "auto"
    """Engine model behind the emulator: verilator (the generated RTL), golden (the Python
    reference), auto (verilator when runs/<name>/rtl and verilator exist, else golden)."""


@dataclass
class Da4mlConfig:
    enabled: Literal["auto", "always", "never"] = "auto"
    """Fully parallel back end (da4ml, delta off): auto runs it for dense policies with at most
    max_nonzero_weights nonzero weights when .venv-da4ml exists; always; never."""
    max_nonzero_weights: int = 20_000
    """auto: the largest policy (nonzero weights) that is unrolled into one circuit."""
    latency_cutoff: float = 5.0
    """da4ml pipelining: the combinational delay per stage in da4ml's units (adder levels)."""
    cosim_frames: int = 1000
    """Real states through the co-simulation (half one at a time, half back to back)."""
    episodes: int = 3
    """Closed-loop episodes on the emulated PYNQ-Z2 through the da4ml design (0: none)."""
    synth: bool = True
    """Run yosys synth_xilinx for the resource estimate."""
    goal: Literal["latency", "throughput", "area"] = "latency"
    """What the report's back-end recommendation optimises."""


@dataclass
class RunConfig:
    name: str = "cartpole"
    """Run name; the run directory is runs/<name>."""
    seed: int = 0
    """Seed for weights, environments and actions."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """Environment."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training."""
    prune: PruneConfig = field(default_factory=PruneConfig)
    """Pruning."""
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    """Quantization and the golden model."""
    analyze: AnalyzeConfig = field(default_factory=AnalyzeConfig)
    """Significant-multiplication analysis."""
    hls: HlsConfig = field(default_factory=HlsConfig)
    """hls4ml back end."""
    rtl: RtlConfig = field(default_factory=RtlConfig)
    """Sparse delta engine."""
    cosim: CosimConfig = field(default_factory=CosimConfig)
    """Co-simulation."""
    board: BoardConfig = field(default_factory=BoardConfig)
    """Closed-loop board run."""
    da4ml: Da4mlConfig = field(default_factory=Da4mlConfig)
    """Fully parallel back end (da4ml)."""


# ---------------------------------------------------------------- docs, (de)serialisation


def field_docs(cls: type) -> dict[str, str]:
    """Field docstrings (the string literal after each annotated field) of a dataclass."""
    try:
        src = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = ast.parse(src).body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for a, b in zip(body, body[1:], strict=False):
        if (
            isinstance(a, ast.AnnAssign)
            and isinstance(a.target, ast.Name)
            and isinstance(b, ast.Expr)
            and isinstance(b.value, ast.Constant)
            and isinstance(b.value.value, str)
        ):
            docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def describe(cls: type = RunConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, doc) for every leaf field."""
    out: list[tuple[str, str, str]] = []
    docs = field_docs(cls)
    inst = cls()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            out.extend(describe(t, key + "."))
        else:
            out.append((key, repr(getattr(inst, f.name)), docs.get(f.name, "")))
    return out


def _coerce(value: Any, t: Any, key: str) -> Any:
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if dataclasses.is_dataclass(t):
        if not isinstance(value, dict):
            raise Rl2fpgaError(f"config key '{key}' must be a mapping, got {value!r}")
        return from_dict(t, value, key + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errs = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except Rl2fpgaError as e:
                errs.append(str(e))
        raise Rl2fpgaError(errs[0] if errs else f"config key '{key}': bad value {value!r}")
    if origin is Literal:
        if value not in args:
            choices = ", ".join(map(str, args))
            raise Rl2fpgaError(f"config key '{key}' must be one of {choices}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise Rl2fpgaError(f"config key '{key}' must be a mapping, got {value!r}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise Rl2fpgaError(f"config key '{key}' has a non-string key {k!r}; use names")
            if isinstance(v, dict | list) or v is None:
                raise Rl2fpgaError(f"config key '{key}.{k}' must be a scalar (true/false, a number or a string), got {v!r}")
            out[k] = _coerce(v, args[1], f"{key}.{k}")
        return out
    if origin is list:
        if not isinstance(value, list):
            raise Rl2fpgaError(f"config key '{key}' must be a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if t is bool:
        if not isinstance(value, bool):
            raise Rl2fpgaError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if t is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise Rl2fpgaError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if t is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Rl2fpgaError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if t is str:
        if not isinstance(value, str):
            raise Rl2fpgaError(f"config key '{key}' must be a string, got {value!r}")
        return value
    return value


def from_dict(cls: type, d: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise Rl2fpgaError(
            f"unknown config key '{prefix}{unknown[0]}'; known keys here: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in d.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _read_text(path: Path) -> str:
    """A config file's text; a binary or non-UTF-8 file is a clean error."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise Rl2fpgaError(f"config file {path} cannot be read ({e.strerror}); check its permissions") from None
    if b"\0" in raw:
        raise Rl2fpgaError(f"config file {path} is binary, not YAML text; pass a YAML config")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Rl2fpgaError(f"config file {path} is not UTF-8 text (byte {e.start}); pass a YAML config") from None


def load_config(path: str | Path | None) -> RunConfig:
    """The embedded default when ``path`` is None, else the YAML file (validated)."""
    if path is None:
        return RunConfig()
    path = Path(path)
    if path.is_dir() and (path / "config.yaml").exists():
        path = path / "config.yaml"
    if not path.exists():
        raise Rl2fpgaError(f"config file {path} not found; pass an existing YAML file or none for the default")
    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise Rl2fpgaError(f"config file {path} is not valid YAML{where}; fix the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Rl2fpgaError(f"config file {path} must be a YAML mapping of sections, got {type(data).__name__}")
    return from_dict(RunConfig, data)


def apply_overrides(cfg: RunConfig, sets: list[str]) -> RunConfig:
    """Apply ``section.field=value`` overrides (values parsed as YAML scalars)."""
    d = to_dict(cfg)
    for s in sets:
        if "=" not in s:
            raise Rl2fpgaError(f"override '{s}' must look like section.field=value")
        key, raw = s.split("=", 1)
        parts = key.strip().split(".")
        node = d
        for p in parts[:-1]:
            if not isinstance(node, dict) or p not in node:
                raise Rl2fpgaError(f"unknown config key '{key}'; see `rl2fpga config` for the keys")
            node = node[p]
        free = parts[:-1] == ["env", "kwargs"]  # the constructor's keywords: any name
        if not isinstance(node, dict) or (parts[-1] not in node and not free):
            raise Rl2fpgaError(f"unknown config key '{key}'; see `rl2fpga config` for the keys")
        node[parts[-1]] = yaml.safe_load(raw)
    return from_dict(RunConfig, d)


def dump_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
