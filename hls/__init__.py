"""rl2fpga.hls: the hardware back ends, each its own package.

* :mod:`rl2fpga.hls.hls4ml` - the hls4ml flow (projects, C simulation, the delta-stage
  extension layer, vendor builds, report parsing);
* :mod:`rl2fpga.hls.engine` - the sparse delta engine (generator, its SystemVerilog, the
  hardware contract, resource estimates);
* :mod:`rl2fpga.hls.da4ml` - the fully parallel circuit for small policies;
* :mod:`rl2fpga.hls.cosim` - Verilator + cocotb co-simulation shared by the RTL back ends
  (build harness, the testbench of the common stream/register contract, the sim wrapper)."""
