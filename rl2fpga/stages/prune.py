"""The ``prune`` stage: ``prune/level_XX/{model.keras, masks.npz, eval.json}``, ``levels.json``,
``selected.json`` (see :mod:`rl2fpga.quantize.prune`; ``during_training`` trains one agent per
target sparsity, each level's time in ``levels.json``). Writes into a temp folder that replaces
``prune/`` only on success; gradual pruning also keeps each finished level in ``.prune.partial``
so that a killed step, run again with the same inputs, resumes after its last finished level."""

from __future__ import annotations

import shutil
import time

import numpy as np

from rl2fpga.artifacts import PruneSummary
from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_dir
from rl2fpga.run import Run
from rl2fpga.train.trainer import load_train_outputs


def prune_step(run: Run, cfg: RunConfig) -> None:

    from rl2fpga.quantize import prune as P

    dense, spec, dense_eval = load_train_outputs(run)
    pc = cfg.prune
    if pc.method == "during_training":
        P.level_schedules(cfg)  # a bad schedule is a one-line error before anything is written
    if pc.method == "imp" and pc.rewind == "init":
        rewind_path = run.layout.train_init_model
    elif pc.method == "imp":
        ckpts = sorted(run.layout.train_checkpoints.glob("step_*.keras"))
        if not ckpts:
            raise Rl2fpgaError(f"prune.rewind=checkpoint but {run.layout.train_checkpoints} has none; set prune.rewind=init or train with checkpoints")
        rewind_path = ckpts[0]
    else:
        rewind_path = None
    if rewind_path is not None:
        run.layout.require("train", rewind_path)
    t0 = time.perf_counter()
    with atomic_dir(run.layout.step("prune")) as out:
        agent_dir = run.layout.train_agent
        finetune = pc.method == "gradual"
        if pc.method in ("student", "during_training"):
            retrain = None
        elif pc.finetune == "distill":
            retrain = P.distiller(cfg, dense, spec)
        else:
            retrain = P.retrainer(cfg, cfg.train.algo, finetune=finetune,
                                  agent_dir=agent_dir if finetune and cfg.train.algo == "sac" and agent_dir.is_dir() else None)
        if pc.method == "imp":
            from rl2fpga.safety import load_keras_model

            rewind_to = load_keras_model(rewind_path)
            levels = P.imp(dense, dense_eval, rewind_to, retrain, cfg, out)
        elif pc.method == "gradual":
            levels = P.gradual(dense, dense_eval, retrain, cfg, out, partial=run.layout.prune_partial)
        elif pc.method == "during_training":
            levels = P.during_training(dense, dense_eval, cfg, out)
        elif pc.method == "student":
            from rl2fpga.quantize.student import students

            levels = students(dense, dense_eval, spec, cfg, out)
        else:
            masks = {la.name: np.ones(la.get_weights()[0].shape, bool) for la in P.prunable_layers(dense)}
            levels = [P.save_level(out, 0, 0, 0.0, dense, masks, dense_eval)]
        sel = P.write_levels(out, levels, pc.keep_return_fraction, pc.method)
        PruneSummary({
            "method": pc.method, "levels": len(levels), "selected_level": sel.index,
            "selected_sparsity": sel.sparsity, "selected_return_mean": sel.eval_return_mean,
            "dense_return_mean": levels[0].eval_return_mean, "max_sparsity": max(lv.sparsity for lv in levels),
            "seconds": round(time.perf_counter() - t0, 2),
        }).save_in(out)
    shutil.rmtree(run.layout.prune_partial, ignore_errors=True)  # its levels are in prune/ now
    print(f"prune: {len(levels)} levels, selected level {sel.index} (sparsity {sel.sparsity:.3f}, return {sel.eval_return_mean:.1f})")
