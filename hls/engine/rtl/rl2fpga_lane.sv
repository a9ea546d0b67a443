// One MAC lane of an event-driven layer. Lane l owns the outputs f = fb * LANES + l: its own
// weight memory of (tap, fb, w) entries (rl2fpga_list_walker), accumulator bank and dirty list,
// so lanes never conflict.
//
// MAC pipeline: the walked entry's tap gives the output position (y / SH - m, x / SW - n),
// which may fall outside the feature map at a border (the entry costs its cycle but is no
// MAC; so does an entry of weight zero: a dense-format zero or a rel filler); read accumulator -> acc + w * delta -> write back; a read that races the previous
// cycle's write of the same address takes the forwarded value. Each accumulator word also holds
// its dirty bit and x_hat of the next layer's input; the first touch of a frame appends the
// accumulator to the dirty list.
//
// Requantize phase: the controller walks the dirty list (or, in sweep mode, every word); the
// lane reads the word, requantizes it (rl2fpga_requant) and writes back the new x_hat with the
// dirty bit cleared. Sweep phase (state reset): every word <- {clean, x_hat 0, bias}.
module rl2fpga_lane
#(
    parameter int    LANE       = 0,
    parameter int    MW         = 1,   // candidate taps per row of the tap grid
    parameter int    OUT_H      = 1,
    parameter int    OUT_W      = 1,
    parameter int    N_OUT      = 8,
    parameter int    LANES      = 4,
    parameter int    W_BITS     = 8,
    parameter int    ACC_BITS   = 24,
    parameter int    OUT_BITS   = 8,
    parameter bit    OUT_SIGNED = 0,
    parameter int    SHIFT      = 5,
    parameter int    SHIFT_BITS = 0,   // > 0: per-output-channel shifts from SHIFT_FILE
    parameter bit    RELU       = 1,
    parameter bit    LAST       = 0,
    parameter int    PTR_BITS   = 8,
    parameter int    LEN_BITS   = 4,
    parameter int    WMEM_DEPTH = 16,
    parameter int    FB_BITS    = 1,   // accumulator-word index bits (contract.fb_bits)
    parameter bit    ROWS       = 0,   // row schedule: a dirty list per output row
    parameter int    TAP_BITS   = 0,   // tap index bits of an entry (contract.tap_bits)
    parameter int    FORMAT     = 0,   // weight storage format (rl2fpga_list_walker)
    parameter int    ENTRY_BITS = TAP_BITS + FB_BITS + W_BITS,
    parameter int    RUN_BITS   = 0,
    parameter WMEM_FILE         = "",
    parameter SHIFT_FILE        = "",
    // derived; not to be overridden
    parameter int    FB         = (N_OUT + LANES - 1) / LANES,
    parameter int    DEPTH      = OUT_H * OUT_W * FB,
    parameter int    AW         = DEPTH > 1 ? $clog2(DEPTH) : 1,
    parameter int    OYW        = OUT_H > 1 ? $clog2(OUT_H) : 1,
    parameter int    OXW        = OUT_W > 1 ? $clog2(OUT_W) : 1,
    parameter int    DLW        = OYW + OXW + FB_BITS,  // dirty list entry {oy, ox, fb}
    parameter int    NR         = ROWS ? OUT_H : 1,     // dirty lists
    parameter int    ROWW       = ROWS ? OUT_W * FB : DEPTH  // entries per dirty list
) (
    input  logic                clk,
    input  logic                rst_n,
    input  rl2fpga_pkg::phase_t              phase,
    input  logic [31:0]         threshold,
    // list from the lookup (T1)
    input  logic                t1_valid,
    input  logic                t1_marker,
    input  logic [rl2fpga_pkg::YW-1:0]       t1_qy,
    input  logic [rl2fpga_pkg::XW-1:0]       t1_qx,
    input  logic [rl2fpga_pkg::VW-1:0]       t1_value,
    input  logic [LEN_BITS+PTR_BITS-1:0] t1_tab,   // this lane's {len, ptr}
    output logic                space,
    output logic                busy,
    output logic                busy_early,        // busy but for the last MAC stage (M2)
    output logic                mac,               // a MAC this cycle
    output logic [AW:0]         dcount_next,       // walk_row's dirty list length after this cycle's append
    // verilator lint_off UNUSEDSIGNAL
    input  logic [OYW-1:0]      walk_row,          // the row being finalized (ROWS; else 0, unused)
    // verilator lint_on UNUSEDSIGNAL
    input  logic                clear_row,         // its dirty list is done (ROWS)
    input  logic                hold,              // a row is being walked: lists wait (ROWS)
    // requantize / sweep control (rl2fpga_layer_ctrl)
    input  logic                adv,
    input  logic                rq_issue,
    input  logic [AW:0]         rq_k,
    input  logic                sweep_mode,
    input  logic [DLW-1:0]      r1_sw,
    input  logic                r2_valid,
    input  logic [DLW-1:0]      sw_entry,          // sweep coordinates {oy, ox, fb}
    input  logic [ACC_BITS-1:0] sw_bias,           // this lane's bias at the sweep's fb
    input  logic                clear_dirty,
    output logic                rq_mask,
    output logic [rl2fpga_pkg::EW-1:0]       rq_payload
);
  // event link widths (rl2fpga_pkg)
  localparam int YW = rl2fpga_pkg::YW, XW = rl2fpga_pkg::XW, VW = rl2fpga_pkg::VW;
  localparam int FBW = FB_BITS;
  localparam int TB  = TAP_BITS;
  localparam int LW  = TB + FBW + W_BITS;      // one (tap, fb, w) entry
  localparam int XB  = LAST ? 1 : OUT_BITS;    // x_hat bits kept per accumulator
  localparam int AWW = 1 + XB + ACC_BITS;      // {dirty, x_hat, acc}

  function automatic logic [AW-1:0] acc_addr(input logic [DLW-1:0] e);
    acc_addr = AW'((32'(e[DLW-1 -: OYW]) * OUT_W + 32'(e[FBW+OXW-1 -: OXW])) * FB + 32'(e[FBW-1:0]));
  endfunction

  // ---------------------------------------------------------- list walker
  logic          cur_valid, walk_busy;
  logic [YW-1:0] cur_qy;
  logic [XW-1:0] cur_qx;
  logic [VW-1:0] cur_value;
  logic [LW-1:0] w_rd;

  rl2fpga_list_walker #(
      .LANE(LANE), .LW(LW), .PTR_BITS(PTR_BITS), .LEN_BITS(LEN_BITS), .WMEM_DEPTH(WMEM_DEPTH),
      .FORMAT(FORMAT), .W_BITS(W_BITS), .FB(FB), .FB_BITS(FB_BITS), .ENTRY_BITS(ENTRY_BITS),
      .RUN_BITS(RUN_BITS), .WMEM_FILE(WMEM_FILE)
  ) u_walk (
      .clk, .rst_n, .hold, .t1_valid, .t1_marker, .t1_qy, .t1_qx, .t1_value,
      .t1_len(t1_tab[LEN_BITS+PTR_BITS-1 -: LEN_BITS]), .t1_ptr(t1_tab[PTR_BITS-1:0]),
      .space, .busy(walk_busy), .cur_valid, .cur_qy, .cur_qx, .cur_value, .w_rd
  );

  // ---------------------------------------------------------- accumulator bank
  logic [AWW-1:0] mem[DEPTH];
  logic [AW-1:0]  acc_ra, acc_wa;
  logic [AWW-1:0] acc_rd, acc_wd;
  logic           acc_re, acc_we;
  always_ff @(posedge clk) begin
    if (acc_we) mem[acc_wa] <= acc_wd;
    if (acc_re) acc_rd <= mem[acc_ra];
  end

  // ---------------------------------------------------------- MAC pipeline
  // M1: weight entry available, output position from its tap, accumulator read issued
  logic              m1_valid, m1_ok;
  logic [YW-1:0]     m1_qy;
  logic [XW-1:0]     m1_qx;
  logic [VW-1:0]     m1_value;
  logic [DLW-1:0]    m1_pos;   // {oy, ox, fb}
  // M2: accumulator word available, multiply-add, write back
  logic              m2_valid, m2_ok;
  logic [DLW-1:0]    m2_pos;
  logic [VW-1:0]     m2_value;
  logic [W_BITS-1:0] m2_w;
  logic [AW-1:0]     m2_addr;
  // forwarding of the previous cycle's write
  logic              fwd_valid;
  logic [AW-1:0]     fwd_addr;
  logic [AWW-1:0]    fwd_data;

  always_comb begin
    int tap, oy, ox;
    tap = 0;
    if (TB > 0) tap = 32'(w_rd[LW-1 -: (TB > 0 ? TB : 1)]);
    oy     = 32'(m1_qy) - tap / MW;
    ox     = 32'(m1_qx) - tap % MW;
    m1_ok  = oy >= 0 && oy < OUT_H && ox >= 0 && ox < OUT_W;
    m1_pos = {OYW'(oy), OXW'(ox), w_rd[FBW+W_BITS-1 -: FBW]};
  end

  logic [AWW-1:0] mac_new;
  logic           mac_push;
  always_comb begin
    logic [AWW-1:0]             old;
    logic signed [ACC_BITS-1:0] acc;
    // the product may be wider than the accumulator: the sum is kept modulo 2^ACC_BITS, exact
    // because every reachable accumulator value fits ACC_BITS (proved by the generator)
    // verilator lint_off UNUSEDSIGNAL
    logic signed [W_BITS+VW-1:0] prod;
    // verilator lint_on UNUSEDSIGNAL
    old      = (fwd_valid && fwd_addr == m2_addr) ? fwd_data : acc_rd;
    acc      = $signed(old[ACC_BITS-1:0]);
    prod     = $signed(m2_w) * $signed(m2_value);
    acc      = acc + ACC_BITS'(prod);
    mac_new  = {1'b1, old[AWW-2 -: XB], acc};
    mac      = m2_valid && m2_ok && m2_w != '0;  // a zero weight (dense format, rel filler) is no MAC
    mac_push = mac && !old[AWW-1];
  end
  assign busy       = walk_busy || m1_valid || m2_valid;
  assign busy_early = walk_busy || m1_valid;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      m1_valid  <= 1'b0;
      m2_valid  <= 1'b0;
      fwd_valid <= 1'b0;
    end else begin
      m1_valid  <= cur_valid;
      m1_qy     <= cur_qy;
      m1_qx     <= cur_qx;
      m1_value  <= cur_value;
      m2_valid  <= m1_valid;
      m2_ok     <= m1_ok;
      m2_pos    <= m1_pos;
      m2_value  <= m1_value;
      m2_w      <= w_rd[W_BITS-1:0];
      m2_addr   <= acc_addr(m1_pos);
      fwd_valid <= mac;
      fwd_addr  <= m2_addr;
      fwd_data  <= mac_new;
    end
  end

  // ---------------------------------------------------------- dirty list
  // one list (row schedule: one per output row, entries of row r at r * ROWW); the requantize
  // phase's first read (rq_k = 0) may race the last MAC's append of that entry (the cycle the
  // MACs finish): it then takes the appended entry
  localparam int RW  = NR > 1 ? $clog2(NR) : 1;
  localparam int RCW = $clog2(ROWW + 1);  // bits of one list's length
  logic [RCW-1:0] dcnt[NR];  // entries in each dirty list
  logic [RCW-1:0] app_cnt, walk_cnt;
  logic [DLW-1:0] dlist[DEPTH];
  logic [DLW-1:0] dl_rd, dl_mem, dl_fwd_pos;
  logic           dl_we, dl_fwd, app_walked;
  logic [RW-1:0]  app_r, walk_r;
  assign app_r      = ROWS ? RW'(m2_pos[DLW-1 -: OYW]) : '0;
  assign walk_r     = ROWS ? RW'(walk_row) : '0;
  assign app_cnt    = dcnt[app_r];
  assign walk_cnt   = dcnt[walk_r];
  assign dl_we      = phase == rl2fpga_pkg::S_MAC && mac_push;
  assign app_walked = dl_we && app_r == walk_r;
  always_ff @(posedge clk) begin
    if (dl_we) dlist[AW'(32'(app_r) * ROWW + 32'(app_cnt))] <= m2_pos;
    if (rq_issue && !sweep_mode) dl_mem <= dlist[AW'(32'(walk_r) * ROWW + 32'(rq_k))];
  end
  always_ff @(posedge clk) begin
    if (rq_issue && !sweep_mode) begin
      dl_fwd     <= app_walked && (AW + 1)'(walk_cnt) == rq_k;
      dl_fwd_pos <= m2_pos;
    end
  end
  assign dl_rd = dl_fwd ? dl_fwd_pos : dl_mem;
  assign dcount_next = (AW + 1)'(walk_cnt) + (AW + 1)'(app_walked);
  // one append per cycle: one incrementer, written to the appended list's counter (appends
  // happen in the MAC phase, a walked row's list is cleared at the end of its walk)
  logic [RCW-1:0] app_next;
  assign app_next = app_cnt + 1'b1;
  always_ff @(posedge clk) begin
    for (int r = 0; r < NR; r++) begin
      if (!rst_n || clear_dirty || (clear_row && RW'(r) == walk_r)) dcnt[r] <= '0;
      else if (dl_we && RW'(r) == app_r) dcnt[r] <= app_next;
    end
  end

  // ---------------------------------------------------------- requantize
  logic                r1_lane, r2_lane;
  logic [DLW-1:0]      r1_entry, r2_entry;
  logic [AWW-2:0]      rq_new;
  assign r1_entry = sweep_mode ? r1_sw : dl_rd;

  always_ff @(posedge clk) begin
    if (adv) begin
      r1_lane  <= sweep_mode || rq_k < dcount_next;
      r2_lane  <= r1_lane;
      r2_entry <= r1_entry;
    end
  end

  rl2fpga_requant #(
      .LANE(LANE), .LANES(LANES), .N_OUT(N_OUT), .ACC_BITS(ACC_BITS), .OUT_BITS(OUT_BITS),
      .OUT_SIGNED(OUT_SIGNED), .SHIFT(SHIFT), .RELU(RELU), .LAST(LAST), .XB(XB), .OYW(OYW),
      .OXW(OXW), .FBW(FBW), .SHIFT_BITS(SHIFT_BITS), .FB_N(FB), .SHIFT_FILE(SHIFT_FILE)
  ) u_rq (
      .valid(r2_valid && r2_lane), .word(acc_rd[AWW-2:0]), .entry(r2_entry), .threshold,
      .send(rq_mask), .payload(rq_payload), .new_word(rq_new)
  );

  // ---------------------------------------------------------- memory ports by phase
  always_comb begin
    case (phase)
      rl2fpga_pkg::S_MAC: begin
        acc_re = m1_valid && m1_ok;
        acc_ra = acc_addr(m1_pos);
        acc_we = mac;
        acc_wa = m2_addr;
        acc_wd = mac_new;
      end
      rl2fpga_pkg::S_RQ: begin
        acc_re = adv;
        acc_ra = acc_addr(r1_entry);
        acc_we = r2_valid && adv && r2_lane;
        acc_wa = acc_addr(r2_entry);
        acc_wd = {1'b0, rq_new};
      end
      default: begin  // S_SWEEP
        acc_re = 1'b0;
        acc_ra = '0;
        acc_we = 1'b1;
        acc_wa = acc_addr(sw_entry);
        acc_wd = {1'b0, XB'(0), sw_bias};
      end
    endcase
  end
endmodule
