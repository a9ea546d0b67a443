"""rl2fpga.board: the policy on a PYNQ board.

* :mod:`~rl2fpga.board.driver` - the PYNQ driver (pynq 4): the same file on the board (deploy
  bundle) and in the tests; :class:`~rl2fpga.board.driver.HlsAcceleratorDriver` puts the hls4ml
  VivadoAccelerator design behind the same interface;
* :mod:`~rl2fpga.board.simdevice` - a simulated PYNQ-Z2 (``pynq.Device``: MMIO, buffers, AXI DMA
  register model) whose data path is an engine model (:mod:`~rl2fpga.board.engine_models`: golden;
  :mod:`~rl2fpga.board.verilator_engine`: the generated RTL in Verilator);
* :mod:`~rl2fpga.board.play` - the ``board`` step: closed-loop episodes on reference, hls-csim,
  emulator or pynq, checked against the golden policy step by step;
* :mod:`~rl2fpga.board.build` / :mod:`~rl2fpga.board.bundle` - the Vivado project (PYNQ-Z2) and
  the deploy bundle; :mod:`~rl2fpga.board.block_design` - the block design's names and parameters.
"""
