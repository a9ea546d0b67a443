"""rl2fpga.quantize."""
