// List walker of one lane: a FIFO of the lists handed to the lane (LIST_FIFO_DEPTH, from the
// generated package; a list that finds it empty and the walker free goes straight through) and a walker that reads the lane's part of the head list from the lane's
// weight memory at one entry per cycle, independently of the other lanes (a lane with a short
// part moves on to the next list while the others finish). `w_rd` is the entry {tap, fb, w}
// read for the previous cycle's `cur_*`, decoded from the stored word of the layer's format:
//   0 csc    the word is {tap, fb, w};
//   1 rel    the word is {run, w}: position p = {tap, fb} = (first of its list ? 0 : previous
//            p + 1) + run; a filler is (2^RUN_BITS - 1, w = 0), no MAC in the lane;
//   2 dense  the word is w; p counts the list's positions (fb wraps at FB into the next tap);
//   3 bitmap the word is w; the list's "len" is its bitmap of positions p = tap * FB + fb: each
//            cycle takes the lowest set bit (one cycle per nonzero, as csc) and clears it.
// `hold` (the layer walks a row of its accumulators) stops the walker where it is; lists keep
// queueing in the FIFO meanwhile.
module rl2fpga_list_walker
#(
    parameter int LANE       = 0,   // selects the weight image: WMEM_FILE + "aa" + LANE + ".mem"
    parameter int LW         = 8,   // one (tap, fb, w) entry
    parameter int PTR_BITS   = 8,
    parameter int LEN_BITS   = 4,
    parameter int WMEM_DEPTH = 16,
    parameter int FORMAT     = 0,   // 0 csc, 1 rel, 2 dense, 3 bitmap
    parameter int W_BITS     = 8,
    parameter int FB         = 1,   // accumulator words per position (dense: fb wraps here)
    parameter int FB_BITS    = 1,
    parameter int ENTRY_BITS = LW,  // one stored word
    parameter int RUN_BITS   = 1,   // rel
    parameter WMEM_FILE      = ""
) (
    input  logic                clk,
    input  logic                rst_n,
    input  logic                hold,
    // list from the lookup (T1)
    input  logic                t1_valid,
    input  logic                t1_marker,
    input  logic [rl2fpga_pkg::YW-1:0]       t1_qy,
    input  logic [rl2fpga_pkg::XW-1:0]       t1_qx,
    input  logic [rl2fpga_pkg::VW-1:0]       t1_value,
    input  logic [LEN_BITS-1:0] t1_len,
    input  logic [PTR_BITS-1:0] t1_ptr,
    output logic                space,     // the FIFO takes the next list
    output logic                busy,      // lists queued or being walked
    // entry being walked
    output logic                cur_valid,
    output logic [rl2fpga_pkg::YW-1:0]       cur_qy,
    output logic [rl2fpga_pkg::XW-1:0]       cur_qx,
    output logic [rl2fpga_pkg::VW-1:0]       cur_value,
    output logic [LW-1:0]       w_rd
);
  // event link widths (rl2fpga_pkg)
  localparam int YW = rl2fpga_pkg::YW, XW = rl2fpga_pkg::XW, VW = rl2fpga_pkg::VW;
  localparam int QD  = rl2fpga_pkg::LIST_FIFO_DEPTH;
  localparam int QIW = YW + XW + VW + PTR_BITS + LEN_BITS;  // {qy, qx, value, ptr, len}
  localparam int WAW = WMEM_DEPTH > 1 ? $clog2(WMEM_DEPTH) : 1;

  localparam int PW  = LW - W_BITS;  // {tap, fb}

  logic [ENTRY_BITS-1:0] wmem[WMEM_DEPTH];
  initial $readmemh({WMEM_FILE, 8'(97 + LANE / 26), 8'(97 + LANE % 26), ".mem"}, wmem);

  logic                    q_push, q_pop;
  logic [QIW-1:0]          q_head;
  logic [$clog2(QD+1)-1:0] q_count;

  // a list that arrives while the FIFO is empty and the walker takes its next list this cycle
  // goes straight to the walker (bypass: no cycle in the FIFO)
  logic load, bypass, cur_on;  // cur_on: a list part is being walked (cur_valid: and not held)
  assign cur_valid = cur_on && !hold;
  assign bypass = t1_valid && !t1_marker && t1_len != '0 && q_count == '0 && !hold && (!cur_on || last_entry);
  assign q_push = t1_valid && !t1_marker && t1_len != '0 && !bypass;
  assign space  = 32'(q_count) + (t1_valid ? 1 : 0) < QD;

  rl2fpga_fifo #(.DEPTH(QD), .W(QIW)) u_q (
      .clk, .rst_n,
      .push     (q_push),
      .push_data({t1_qy, t1_qx, t1_value, t1_ptr, t1_len}),
      .pop      (q_pop),
      .head     (q_head),
      .count    (q_count)
  );

  logic [PTR_BITS-1:0] cur_ptr;
  logic [LEN_BITS-1:0] cur_left;

  // the list part's last entry: one left, or (bitmap) one set bit left
  logic                last_entry;
  logic [LEN_BITS-1:0] next_left;
  assign next_left  = FORMAT == 3 ? cur_left & (cur_left - 1'b1) : cur_left - 1'b1;
  assign last_entry = FORMAT == 3 ? next_left == '0 : cur_left == LEN_BITS'(1);
  assign q_pop = q_count != '0 && !hold && (!cur_on || last_entry);
  assign load  = q_pop || bypass;
  assign busy  = q_count != '0 || cur_on;

  if (FORMAT == 1) begin : g_rel
    logic                  cur_first, rd_first;
    logic [ENTRY_BITS-1:0] rd_word;
    logic [PW-1:0]         pos, pos_q;
    always_ff @(posedge clk) begin
      if (load) cur_first <= 1'b1;
      else if (cur_valid) cur_first <= 1'b0;
      if (cur_valid) begin
        rd_word  <= wmem[WAW'(cur_ptr)];
        rd_first <= cur_first;
      end
      pos_q <= pos;  // only read within a list, whose entries are walked back to back
    end
    assign pos  = (rd_first ? PW'(0) : pos_q + 1'b1) + PW'(rd_word[ENTRY_BITS-1 -: RUN_BITS]);
    assign w_rd = {pos, rd_word[W_BITS-1:0]};
  end else if (FORMAT == 2) begin : g_dense
    logic [PW-1:0] cur_pos;
    always_ff @(posedge clk) begin
      if (load) cur_pos <= '0;
      else if (cur_valid && 32'(cur_pos[FB_BITS-1:0]) == FB - 1) cur_pos <= PW'((32'(cur_pos) >> FB_BITS) + 1) << FB_BITS;
      else if (cur_valid) cur_pos <= cur_pos + 1'b1;
      if (cur_valid) w_rd <= {cur_pos, wmem[WAW'(cur_ptr)]};
    end
  end else if (FORMAT == 3) begin : g_bitmap
    function automatic int lowest_set(input logic [LEN_BITS-1:0] b);
      lowest_set = 0;
      for (int i = LEN_BITS - 1; i >= 0; i--) if (b[i]) lowest_set = i;
    endfunction
    always_ff @(posedge clk) begin
      if (cur_valid) w_rd <= {PW'((lowest_set(cur_left) / FB) << FB_BITS | (lowest_set(cur_left) % FB)),
                              wmem[WAW'(cur_ptr)]};
    end
  end else begin : g_csc
    always_ff @(posedge clk) begin
      if (cur_valid) w_rd <= wmem[WAW'(cur_ptr)];
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      cur_on <= 1'b0;
    end else if (load) begin
      cur_on <= 1'b1;
      {cur_qy, cur_qx, cur_value, cur_ptr, cur_left} <= q_pop ? q_head : {t1_qy, t1_qx, t1_value, t1_ptr, t1_len};
    end else if (cur_valid) begin
      cur_ptr  <= cur_ptr + 1'b1;
      cur_left <= next_left;
      if (last_entry) cur_on <= 1'b0;
    end
  end
endmodule
