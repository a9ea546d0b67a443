// Simulation wrapper of rl2fpga_engine_top with a free-running 100 MHz clock generated inside
// the simulator (Verilator --timing), so that cocotb only wakes up when the testbench waits on
// a signal, not on every clock edge. Ports are the engine's, minus clk (the port list of
// hls/engine/contract.py:axi_ports; the harness passes the design's ADDR_WIDTH and BYTES).
module rl2fpga_engine_sim #(
    parameter int    BYTES      = 8,
    parameter int    ADDR_WIDTH = 8,
    parameter MEM_DIR = ""
) (
    input  logic                 rst_n,
    input  logic [ADDR_WIDTH-1:0] s_axil_awaddr,
    input  logic                 s_axil_awvalid,
    output logic                 s_axil_awready,
    input  logic [31:0]          s_axil_wdata,
    input  logic [3:0]           s_axil_wstrb,
    input  logic                 s_axil_wvalid,
    output logic                 s_axil_wready,
    output logic [1:0]           s_axil_bresp,
    output logic                 s_axil_bvalid,
    input  logic                 s_axil_bready,
    input  logic [ADDR_WIDTH-1:0] s_axil_araddr,
    input  logic                 s_axil_arvalid,
    output logic                 s_axil_arready,
    output logic [31:0]          s_axil_rdata,
    output logic [1:0]           s_axil_rresp,
    output logic                 s_axil_rvalid,
    input  logic                 s_axil_rready,
    input  logic [8*BYTES-1:0]   s_axis_tdata,
    input  logic                 s_axis_tvalid,
    output logic                 s_axis_tready,
    input  logic                 s_axis_tlast,
    output logic [31:0]          m_axis_tdata,
    output logic                 m_axis_tvalid,
    input  logic                 m_axis_tready,
    output logic                 m_axis_tlast
);
  logic clk = 1'b0;
  always #5 clk = ~clk;

  rl2fpga_engine_top #(.MEM_DIR(MEM_DIR)) dut (.*);
endmodule
