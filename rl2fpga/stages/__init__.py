"""rl2fpga.stages: one module per pipeline stage, each holding that stage's step function
``step(run, cfg) -> None`` (looked up by name in :mod:`rl2fpga.pipeline`). A stage module reads
the earlier stages' artifacts, calls the library code in ``train/``, ``quantize/``, ``hls/``
and ``board/``, and writes its own folder of the run atomically. Library code never imports a
stage module."""
