"""rl2fpga.hls.da4ml: the fully parallel back end for small policies (da4ml, delta off)."""
