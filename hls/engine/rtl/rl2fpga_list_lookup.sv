// List lookup of an event-driven layer: one event per cycle -> the table word {len, ptr} per lane
// of its compressed list (dense: the list of input index (y, x, c); conv: the list of its input
// class (y % SH, x % SW, c), which holds the nonzero weights of every candidate tap at once, so
// the lanes, not this stage, walk the taps). The word and the event's payload arrive one cycle
// later (T1), when every lane whose part of the list is not empty takes them. The dense storage
// format has no table: every list part is LIST_LEN words at t * LIST_LEN.
module rl2fpga_list_lookup
#(
    parameter int KIND      = 0,   // 0 dense, 1 conv2d
    parameter int IN_W      = 1,
    parameter int IN_C      = 4,
    parameter int SH        = 1,
    parameter int SW        = 1,
    parameter int LANES     = 4,
    parameter int TAB_DEPTH = 4,
    parameter int PTR_BITS  = 8,
    parameter int LEN_BITS  = 4,
    parameter bit TABLE     = 1,   // 0 (dense format): no table, list t is {LIST_LEN, t * LIST_LEN}
    parameter int LIST_LEN  = 1,
    parameter TAB_FILE      = ""
) (
    input  logic                               clk,
    input  logic                               rst_n,
    input  logic                               issue,       // an event (or the marker) is taken
    input  logic                               in_last,
    input  logic [rl2fpga_pkg::EW-1:0]                      in_payload,
    output logic                               t1_valid,
    output logic                               t1_marker,
    output logic [rl2fpga_pkg::YW-1:0]                      t1_qy,       // conv: y / SH, x / SW (tap (0, 0))
    output logic [rl2fpga_pkg::XW-1:0]                      t1_qx,
    output logic [rl2fpga_pkg::VW-1:0]                      t1_value,
    output logic [LANES*(LEN_BITS+PTR_BITS)-1:0] tab_rd     // lane l: {len, ptr} at [l*TEW +: TEW]
);
  // event link widths (rl2fpga_pkg)
  localparam int YW = rl2fpga_pkg::YW, XW = rl2fpga_pkg::XW, CW = rl2fpga_pkg::CW, VW = rl2fpga_pkg::VW, EW = rl2fpga_pkg::EW;
  localparam int TEW  = LEN_BITS + PTR_BITS;
  localparam int TABW = TAB_DEPTH > 1 ? $clog2(TAB_DEPTH) : 1;

  logic [TABW-1:0] tab_addr;
  logic [YW-1:0]   ev_qy;
  logic [XW-1:0]   ev_qx;

  always_comb begin
    int y, x, c;
    y = 32'(in_payload[EW-1 -: YW]);
    x = 32'(in_payload[EW-YW-1 -: XW]);
    c = 32'(in_payload[VW+CW-1 -: CW]);
    if (KIND == 1) begin
      tab_addr = TABW'(((y % SH) * SW + x % SW) * IN_C + c);
      ev_qy    = YW'(y / SH);
      ev_qx    = XW'(x / SW);
    end else begin
      tab_addr = TABW'((y * IN_W + x) * IN_C + c);
      ev_qy    = '0;
      ev_qx    = '0;
    end
  end

  if (TABLE) begin : g_table
    logic [TEW*LANES-1:0] tab[TAB_DEPTH];
    initial $readmemh(TAB_FILE, tab);
    always_ff @(posedge clk) begin
      if (issue && !in_last) tab_rd <= tab[tab_addr];
    end
  end else begin : g_dense
    always_ff @(posedge clk) begin
      if (issue && !in_last) tab_rd <= {LANES{LEN_BITS'(LIST_LEN), PTR_BITS'(32'(tab_addr) * LIST_LEN)}};
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      t1_valid <= 1'b0;
    end else begin
      t1_valid <= issue;
      if (issue) begin
        t1_marker <= in_last;
        t1_qy     <= ev_qy;
        t1_qx     <= ev_qx;
        t1_value  <= in_payload[VW-1:0];
      end
    end
  end
endmodule
