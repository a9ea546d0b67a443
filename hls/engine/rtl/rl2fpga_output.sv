// Output stage: the last layer's output values arrive as events (c = output index, value = y),
// in index order; each becomes one 32-bit beat (sign-extended). The end-of-frame marker becomes
// the action beat: the first index of the largest value, with TLAST.
module rl2fpga_output
(
    // the y/x fields of the payload are not used: the output vector is 1-D (index in c)
    // verilator lint_off UNUSEDSIGNAL
    input  logic          clk,
    input  logic          rst_n,
    input  logic          in_valid,
    output logic          in_ready,
    input  logic          in_last,
    input  logic [rl2fpga_pkg::EW-1:0] in_payload,
    // verilator lint_on UNUSEDSIGNAL
    output logic [31:0]   m_axis_tdata,
    output logic          m_axis_tvalid,
    input  logic          m_axis_tready,
    output logic          m_axis_tlast,
    output logic          action_sent,  // pulse: the action beat left
    output logic [31:0]   action
);
  // event link widths (rl2fpga_pkg)
  localparam int CW = rl2fpga_pkg::CW, VW = rl2fpga_pkg::VW;

  logic signed [VW-1:0] value, best;
  logic [CW-1:0]        index, best_index;
  logic                 have_best;

  assign value         = $signed(in_payload[VW-1:0]);
  assign index         = in_payload[VW+CW-1 -: CW];
  assign m_axis_tvalid = in_valid;
  assign m_axis_tlast  = in_last;
  assign m_axis_tdata  = in_last ? 32'(best_index) : 32'(value);
  assign in_ready      = m_axis_tready;
  assign action_sent   = in_valid && in_ready && in_last;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      have_best  <= 1'b0;
      best       <= '0;
      best_index <= '0;
      action     <= '0;
    end else if (in_valid && in_ready) begin
      if (in_last) begin
        have_best <= 1'b0;
        action    <= 32'(best_index);
      end else if (!have_best || value > best) begin
        have_best  <= 1'b1;
        best       <= value;
        best_index <= index;
      end
    end
  end
endmodule
