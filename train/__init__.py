"""rl2fpga.train."""
