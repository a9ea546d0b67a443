"""rl2fpga.hls.engine: the sparse delta engine: generator, hand-written SystemVerilog (rtl/), the hardware contract (register map), resource estimates."""
