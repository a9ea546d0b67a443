// AXI4-Lite register file of the engine. Addresses and bit positions come from the generated
// package rl2fpga_pkg (rendered from hls/engine/contract.py, the one definition of the map).
// One outstanding write and one outstanding read; writes take address and data together. Reads
// of unmapped addresses return 0; writes to read-only registers are ignored.
module rl2fpga_axil_regs
#(
    parameter int                     N_LAYERS    = 1,
    parameter logic [31:0]            INFO        = 32'h0,
    parameter logic [N_LAYERS*32-1:0] THRESH_INIT = '0
) (
    input  logic                  clk,
    input  logic                  rst_n,
    // AXI4-Lite slave
    input  logic [rl2fpga_pkg::ADDR_WIDTH-1:0] s_axil_awaddr,
    input  logic                  s_axil_awvalid,
    output logic                  s_axil_awready,
    input  logic [31:0]           s_axil_wdata,
    input  logic [3:0]            s_axil_wstrb,
    input  logic                  s_axil_wvalid,
    output logic                  s_axil_wready,
    output logic [1:0]            s_axil_bresp,
    output logic                  s_axil_bvalid,
    input  logic                  s_axil_bready,
    input  logic [rl2fpga_pkg::ADDR_WIDTH-1:0] s_axil_araddr,
    input  logic                  s_axil_arvalid,
    output logic                  s_axil_arready,
    output logic [31:0]           s_axil_rdata,
    output logic [1:0]            s_axil_rresp,
    output logic                  s_axil_rvalid,
    input  logic                  s_axil_rready,
    // control out
    output logic                  req_reset_state,
    output logic                  req_reset_counters,
    output logic                  req_full_frame,      // CTRL bit 2: the next frame is a full stack
    output logic [N_LAYERS*32-1:0] threshold,  // layer k at [32*k +: 32]
    output logic [N_LAYERS-1:0]   threshold_written,
    // status and counters in
    input  logic                  busy,
    input  logic                  frame_done,
    input  logic                  stream_error,
    input  logic [31:0]           frames,
    input  logic [31:0]           last_cycles,
    input  logic [63:0]           total_cycles,
    input  logic [31:0]           action,
    input  logic [N_LAYERS*32-1:0] events,
    input  logic [N_LAYERS*32-1:0] macs
);

  logic done_flag, error_flag;
  logic wr, rd;

  assign wr = s_axil_awvalid && s_axil_wvalid && !s_axil_bvalid;
  assign s_axil_awready = wr;
  assign s_axil_wready  = wr;
  assign s_axil_bresp   = 2'b00;
  assign rd = s_axil_arvalid && !s_axil_rvalid;
  assign s_axil_arready = rd;
  assign s_axil_rresp   = 2'b00;

  function automatic logic [31:0] read_reg(input logic [rl2fpga_pkg::ADDR_WIDTH-1:0] a);
    read_reg = 32'd0;
    case (32'(a))
      rl2fpga_pkg::REG_STATUS: begin
        read_reg[rl2fpga_pkg::STATUS_BUSY_BIT]  = busy;
        read_reg[rl2fpga_pkg::STATUS_DONE_BIT]  = done_flag;
        read_reg[rl2fpga_pkg::STATUS_ERROR_BIT] = error_flag;
      end
      rl2fpga_pkg::REG_ID:              read_reg = rl2fpga_pkg::ENGINE_ID;
      rl2fpga_pkg::REG_INFO:            read_reg = INFO;
      rl2fpga_pkg::REG_FRAMES:          read_reg = frames;
      rl2fpga_pkg::REG_CYCLES:          read_reg = last_cycles;
      rl2fpga_pkg::REG_TOTAL_CYCLES_LO: read_reg = total_cycles[31:0];
      rl2fpga_pkg::REG_TOTAL_CYCLES_HI: read_reg = total_cycles[63:32];
      rl2fpga_pkg::REG_ACTION:          read_reg = action;
      default: begin
        for (int k = 0; k < N_LAYERS; k++) begin
          if (32'(a) == rl2fpga_pkg::REG_THRESHOLD_BASE + rl2fpga_pkg::THRESHOLD_STRIDE * k) read_reg = threshold[32*k +: 32];
          if (32'(a) == rl2fpga_pkg::REG_EVENTS_BASE + rl2fpga_pkg::COUNTER_STRIDE * k) read_reg = events[32*k +: 32];
          if (32'(a) == rl2fpga_pkg::REG_MACS_BASE + rl2fpga_pkg::COUNTER_STRIDE * k) read_reg = macs[32*k +: 32];
        end
      end
    endcase
  endfunction

  always_ff @(posedge clk) begin
    req_reset_state    <= 1'b0;
    req_reset_counters <= 1'b0;
    req_full_frame     <= 1'b0;
    threshold_written  <= '0;
    if (!rst_n) begin
      s_axil_bvalid <= 1'b0;
      s_axil_rvalid <= 1'b0;
      s_axil_rdata  <= '0;
      done_flag     <= 1'b0;
      error_flag    <= 1'b0;
      threshold <= THRESH_INIT;
    end else begin
      if (frame_done) done_flag <= 1'b1;
      if (stream_error) error_flag <= 1'b1;
      if (s_axil_bvalid && s_axil_bready) s_axil_bvalid <= 1'b0;
      if (s_axil_rvalid && s_axil_rready) s_axil_rvalid <= 1'b0;
      if (wr) begin
        s_axil_bvalid <= 1'b1;
        if (32'(s_axil_awaddr) == rl2fpga_pkg::REG_CTRL && s_axil_wstrb[0]) begin
          req_reset_state    <= s_axil_wdata[rl2fpga_pkg::CTRL_RESET_STATE_BIT];
          req_reset_counters <= s_axil_wdata[rl2fpga_pkg::CTRL_RESET_COUNTERS_BIT];
          req_full_frame     <= s_axil_wdata[rl2fpga_pkg::CTRL_FULL_FRAME_BIT];
        end
        for (int k = 0; k < N_LAYERS; k++) begin
          if (32'(s_axil_awaddr) == rl2fpga_pkg::REG_THRESHOLD_BASE + rl2fpga_pkg::THRESHOLD_STRIDE * k) begin
            for (int b = 0; b < 4; b++)
              if (s_axil_wstrb[b]) threshold[32*k+8*b +: 8] <= s_axil_wdata[8*b +: 8];
            threshold_written[k] <= 1'b1;
          end
        end
      end
      if (rd) begin
        s_axil_rvalid <= 1'b1;
        s_axil_rdata  <= read_reg(s_axil_araddr);
        if (32'(s_axil_araddr) == rl2fpga_pkg::REG_STATUS) begin
          done_flag  <= frame_done;
          error_flag <= stream_error;
        end
      end
    end
  end
endmodule
