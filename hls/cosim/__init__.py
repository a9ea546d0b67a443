"""rl2fpga.hls.cosim: Verilator + cocotb co-simulation: the build harness, the testbench of the common AXI4-Stream / AXI4-Lite contract (driver, monitor, scoreboard), the simulation wrapper."""
