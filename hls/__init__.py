"""rl2fpga.hls."""
