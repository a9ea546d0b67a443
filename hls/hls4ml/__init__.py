"""rl2fpga.hls.hls4ml: the hls4ml back end: project conversion and C simulation, the delta-update extension layer, vendor builds and their reports."""
