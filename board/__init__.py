"""rl2fpga.board."""
