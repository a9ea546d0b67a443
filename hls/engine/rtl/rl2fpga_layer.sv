// Event-driven layer of the sparse delta engine (dense or valid-padding conv2d).
//
// MAC phase: every incoming event (y, x, c, delta) is turned into its nonzero fan-out and
// accumulated into accumulators kept between frames:
//   list lookup    one event per cycle -> the table word {len, ptr} per lane of its compressed
//                  list (dense: the list of input index (y, x, c); conv: the list of its input
//                  class (y % SH, x % SW, c), which holds the nonzero weights of every candidate
//                  tap (m, n), m < ceil(KH/SH), n < ceil(KW/SW), as (tap, fb, w) entries);
//   lanes          lane l owns outputs f = fb * LANES + l: its own accumulator bank, weight
//                  memory of (tap, fb, w) entries and dirty list, so lanes never conflict. Each
//                  lane has a FIFO of lists and walks its part of each list at one entry per
//                  cycle, independently of the other lanes (no padding: a lane with a short part
//                  moves on to the next list while the others finish); an entry whose tap puts
//                  the output (y / SH - m, x / SW - n) outside the feature map (a border) costs
//                  its cycle but is no MAC;
//   MAC pipeline   read accumulator -> acc + w * delta -> write back; a read that races the
//                  previous cycle's write of the same address takes the forwarded value.
// Each accumulator word also holds its dirty bit and x_hat of the next layer's input; the first
// touch of a frame appends the accumulator to its bank's dirty list.
//
// Requantize phase (after the end-of-frame marker has drained): walk the dirty lists (or, after
// a state reset or threshold write, every accumulator), requantize (round half even, saturate,
// ReLU), compare with x_hat and the next layer's threshold, and send the changed outputs as
// events (the last layer sends every output value instead), then the marker. Sets of changed
// outputs queue in a small FIFO before the serializer, so walking and sending overlap.
//
// State reset: accumulators <- bias, x_hat <- 0, dirty lists empty, next frame all dirty.
module rl2fpga_layer
#(
    parameter int    KIND       = 0,   // 0 dense, 1 conv2d
    parameter int    IN_W       = 1,   // input (h, w, c) width and channels; a vector is (1, 1, n)
    parameter int    IN_C       = 4,
    parameter int    KH         = 1,
    parameter int    KW         = 1,
    parameter int    SH         = 1,
    parameter int    SW         = 1,
    parameter int    OUT_H      = 1,
    parameter int    OUT_W      = 1,
    parameter int    N_OUT      = 8,   // output channels / rows
    parameter int    LANES      = 4,
    parameter int    W_BITS     = 8,
    parameter int    ACC_BITS   = 24,
    parameter int    OUT_BITS   = 8,
    parameter bit    OUT_SIGNED = 0,
    parameter int    SHIFT      = 5,
    parameter bit    RELU       = 1,
    parameter bit    LAST       = 0,   // last layer: send every output value, no threshold
    parameter int    TAB_DEPTH  = 4,
    parameter int    PTR_BITS   = 8,
    parameter int    LEN_BITS   = 4,
    parameter int    WMEM_DEPTH = 16,
    parameter WMEM_FILE  = "",
    parameter TAB_FILE   = "",
    parameter BIAS_FILE  = ""
) (
    input  logic          clk,
    input  logic          rst_n,
    input  logic          state_reset,     // pulse (between frames): acc <- bias, x_hat <- 0
    input  logic          force_all_dirty, // pulse: the next layer's threshold changed
    input  logic [31:0]   threshold,       // T_int of the next layer's input
    output logic          busy,            // sweeping or processing
    // events in
    input  logic          in_valid,
    output logic          in_ready,
    input  logic          in_last,
    input  logic [rl2fpga_pkg::EW-1:0] in_payload,
    // events out (to the next layer, or output values when LAST)
    output logic          out_valid,
    input  logic          out_ready,
    output logic          out_last,
    output logic [rl2fpga_pkg::EW-1:0] out_payload,
    // counters of the last finished frame
    output logic [31:0]   last_events,
    output logic [31:0]   last_macs,
    output logic [31:0]   last_pad      // lane-cycles idle while another lane still worked
);
  // event link widths (rl2fpga_pkg)
  localparam int YW = rl2fpga_pkg::YW, XW = rl2fpga_pkg::XW, CW = rl2fpga_pkg::CW;
  localparam int VW = rl2fpga_pkg::VW, EW = rl2fpga_pkg::EW;

  localparam int FB    = (N_OUT + LANES - 1) / LANES;       // accumulator words per position
  localparam int FBW   = FB > 1 ? $clog2(FB) : 1;
  localparam int DEPTH = OUT_H * OUT_W * FB;                 // words per bank
  localparam int AW    = DEPTH > 1 ? $clog2(DEPTH) : 1;
  localparam int OYW   = OUT_H > 1 ? $clog2(OUT_H) : 1;
  localparam int OXW   = OUT_W > 1 ? $clog2(OUT_W) : 1;
  localparam int TEW   = LEN_BITS + PTR_BITS;                // one lane's {len, ptr}
  localparam int TABW  = TAB_DEPTH > 1 ? $clog2(TAB_DEPTH) : 1;
  localparam int WAW   = WMEM_DEPTH > 1 ? $clog2(WMEM_DEPTH) : 1;
  localparam int MH    = KIND == 1 ? (KH + SH - 1) / SH : 1;  // candidate taps per event
  localparam int MW    = KIND == 1 ? (KW + SW - 1) / SW : 1;
  localparam int TB    = MH * MW > 1 ? $clog2(MH * MW) : 0;  // tap index bits of an entry
  localparam int LW    = TB + FBW + W_BITS;                  // one (tap, fb, w) entry
  localparam int XB    = LAST ? 1 : OUT_BITS;                // x_hat bits kept per accumulator
  localparam int AWW   = 1 + XB + ACC_BITS;                  // {dirty, x_hat, acc}
  localparam int DLW   = OYW + OXW + FBW;                    // dirty list entry {oy, ox, fb}
  localparam logic signed [63:0] QMIN = OUT_SIGNED ? -(64'sd1 <<< (OUT_BITS - 1)) : 64'sd0;
  localparam logic signed [63:0] QMAX = OUT_SIGNED ? (64'sd1 <<< (OUT_BITS - 1)) - 1 : (64'sd1 <<< OUT_BITS) - 1;

  typedef enum logic [1:0] {S_MAC, S_RQ, S_SWEEP} phase_t;
  phase_t phase;
  logic   all_dirty;

  // ================================================================ read-only memories
  logic [LANES*TEW-1:0]      tab[TAB_DEPTH];
  logic [LANES*ACC_BITS-1:0] bias_rom[FB];
  initial begin
    $readmemh(TAB_FILE, tab);
    $readmemh(BIAS_FILE, bias_rom);
  end

  // ================================================================ list lookup
  // One event, one cycle: its list is looked up in the table and handed to every lane whose
  // part of it is not empty. A conv event's list holds every candidate tap (m, n) of its input
  // class (y % SH, x % SW, c) at once, so the lanes (not this stage) walk the taps.
  logic              tap_issue, fifo_space;
  logic              marker_inflight;   // nothing new is accepted until the lanes have done this frame
  logic [TABW-1:0]   tab_addr;
  logic [YW-1:0]     ev_qy;              // conv: y / SH, x / SW (the output of tap (0, 0))
  logic [XW-1:0]     ev_qx;

  assign in_ready  = phase == S_MAC && !marker_inflight && fifo_space;
  assign tap_issue = in_valid && in_ready;

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

  // T1: table word arrives, the event goes to every lane whose part of the list is not empty
  logic                  t1_valid, t1_marker;
  logic [YW-1:0]         t1_qy;
  logic [XW-1:0]         t1_qx;
  logic [VW-1:0]         t1_value;
  logic [LANES*TEW-1:0]  tab_rd;

  always_ff @(posedge clk) begin
    if (tap_issue && !in_last) tab_rd <= tab[tab_addr];
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      t1_valid <= 1'b0;
    end else begin
      t1_valid <= tap_issue;
      if (tap_issue) begin
        t1_marker <= in_last;
        t1_qy     <= ev_qy;
        t1_qx     <= ev_qx;
        t1_value  <= in_payload[VW-1:0];
      end
    end
  end

  // ================================================================ requantize control
  logic [AW:0]    rq_k, rq_total;
  logic [OYW-1:0] sw_oy;   // sweep coordinates (all-dirty mode and state reset)
  logic [OXW-1:0] sw_ox;
  logic [FBW-1:0] sw_fb;
  logic           sweep_mode, sweep_end;
  logic           r1_valid, r2_valid;
  logic [DLW-1:0] r1_sw;
  logic           adv, rq_issue, rq_done, clear_dirty;
  logic           ser_can_load, ser_valid;
  logic [EW-1:0]  ser_payload;
  logic [LANES-1:0]         rq_mask;
  logic [LANES*EW-1:0]      rq_payload;

  assign sweep_mode = all_dirty || LAST;
  // sets of changed outputs wait in a small FIFO for the serializer, so the walk does not stop
  // while a set is being sent (walking and sending overlap)
  localparam int SD = 4;
  localparam int SETW = LANES + LANES * EW;  // {mask, payloads}
  logic              set_push, set_pop;
  logic [SETW-1:0]   set_head;
  logic [$clog2(SD+1)-1:0] set_count;

  assign adv        = !r2_valid || !(|rq_mask) || 32'(set_count) < SD;
  assign rq_issue   = phase == S_RQ && rq_k < rq_total && adv;

  function automatic logic signed [63:0] requantize(input logic signed [ACC_BITS-1:0] acc);
    logic signed [63:0] a, q, rem, half, y;
    a    = {{(64 - ACC_BITS){acc[ACC_BITS-1]}}, acc};
    q    = a >>> SHIFT;
    rem  = a - (q <<< SHIFT);
    half = SHIFT > 0 ? (64'sd1 <<< (SHIFT - 1)) : 64'sd0;
    y    = q + ((SHIFT > 0 && (rem > half || (rem == half && q[0]))) ? 64'sd1 : 64'sd0);
    if (y > QMAX) y = QMAX;
    if (y < QMIN) y = QMIN;
    if (RELU && y < 0) y = 0;
    requantize = y;
  endfunction

  function automatic logic [AW-1:0] acc_addr(input logic [OYW-1:0] oy, input logic [OXW-1:0] ox,
                                             input logic [FBW-1:0] fb);
    acc_addr = AW'((32'(oy) * OUT_W + 32'(ox)) * FB + 32'(fb));
  endfunction

  // ================================================================ lanes
  logic [LANES-1:0]         lane_space, lane_busy, lane_mac;
  logic [LANES*(AW+1)-1:0]  lane_dcount;

  for (genvar l = 0; l < LANES; l++) begin : g_lane
    // ---------------------------------------------------------- weights of this lane
    logic [LW-1:0] wmem[WMEM_DEPTH];
    initial $readmemh({WMEM_FILE, 8'(97 + l / 26), 8'(97 + l % 26), ".mem"}, wmem);

    // ---------------------------------------------------------- list FIFO
    localparam int QD  = 8;
    localparam int QIW = YW + XW + VW + PTR_BITS + LEN_BITS;  // {qy, qx, value, ptr, len}
    logic                   q_push, q_pop;
    logic [QIW-1:0]         q_head;
    logic [$clog2(QD+1)-1:0] q_count;
    logic [LEN_BITS-1:0]    t1_len;
    logic [PTR_BITS-1:0]    t1_ptr;

    assign {t1_len, t1_ptr} = tab_rd[l*TEW +: TEW];
    assign q_push        = t1_valid && !t1_marker && t1_len != '0;
    assign lane_space[l] = 32'(q_count) + (t1_valid ? 1 : 0) < QD;

    rl2fpga_fifo #(.DEPTH(QD), .W(QIW)) u_q (
        .clk, .rst_n,
        .push     (q_push),
        .push_data({t1_qy, t1_qx, t1_value, t1_ptr, t1_len}),
        .pop      (q_pop),
        .head     (q_head),
        .count    (q_count)
    );

    // ---------------------------------------------------------- list walker
    logic                cur_valid;
    logic [PTR_BITS-1:0] cur_ptr;
    logic [LEN_BITS-1:0] cur_left;
    logic [YW-1:0]       cur_qy;
    logic [XW-1:0]       cur_qx;
    logic [VW-1:0]       cur_value;
    logic [LW-1:0]       w_rd;

    assign q_pop = q_count != '0 && (!cur_valid || cur_left == LEN_BITS'(1));

    always_ff @(posedge clk) begin
      if (cur_valid) w_rd <= wmem[WAW'(cur_ptr)];
    end

    always_ff @(posedge clk) begin
      if (!rst_n) begin
        cur_valid <= 1'b0;
      end else if (q_pop) begin
        cur_valid <= 1'b1;
        {cur_qy, cur_qx, cur_value, cur_ptr, cur_left} <= q_head;
      end else if (cur_valid) begin
        cur_ptr  <= cur_ptr + 1'b1;
        cur_left <= cur_left - 1'b1;
        if (cur_left == LEN_BITS'(1)) cur_valid <= 1'b0;
      end
    end

    // ---------------------------------------------------------- accumulator bank, dirty list
    logic [AWW-1:0] mem[DEPTH];
    logic [AW-1:0]  acc_ra, acc_wa;
    logic [AWW-1:0] acc_rd, acc_wd;
    logic           acc_re, acc_we;
    always_ff @(posedge clk) begin
      if (acc_we) mem[acc_wa] <= acc_wd;
      if (acc_re) acc_rd <= mem[acc_ra];
    end

    // ---------------------------------------------------------- MAC pipeline
    // M1: weight entry available: its tap gives the output position, which may fall outside the
    //     feature map at a border (then no MAC); accumulator read issued
    logic              m1_valid, m1_ok;
    logic [YW-1:0]     m1_qy;
    logic [XW-1:0]     m1_qx;
    logic [OYW-1:0]    m1_oy;
    logic [OXW-1:0]    m1_ox;
    logic [VW-1:0]     m1_value;
    logic [FBW-1:0]    m1_fb;
    // M2: accumulator word available, multiply-add, write back
    logic              m2_valid, m2_ok;
    logic [OYW-1:0]    m2_oy;
    logic [OXW-1:0]    m2_ox;
    logic [VW-1:0]     m2_value;
    logic [FBW-1:0]    m2_fb;
    logic [W_BITS-1:0] m2_w;
    logic [AW-1:0]     m2_addr;
    // forwarding of the previous cycle's write
    logic              fwd_valid;
    logic [AW-1:0]     fwd_addr;
    logic [AWW-1:0]    fwd_data;

    assign m1_fb = w_rd[FBW+W_BITS-1 -: FBW];
    always_comb begin
      int tap, oy, ox;
      tap = 0;
      if (TB > 0) tap = 32'(w_rd[LW-1 -: (TB > 0 ? TB : 1)]);
      oy    = 32'(m1_qy) - tap / MW;
      ox    = 32'(m1_qx) - tap % MW;
      m1_ok = oy >= 0 && oy < OUT_H && ox >= 0 && ox < OUT_W;
      m1_oy = OYW'(oy);
      m1_ox = OXW'(ox);
    end

    logic [AWW-1:0] mac_new;
    logic           mac_we, mac_push;
    always_comb begin
      logic [AWW-1:0]               old;
      logic signed [ACC_BITS-1:0]   acc;
      // the product may be wider than the accumulator: the sum is kept modulo 2^ACC_BITS, exact
      // because every reachable accumulator value fits ACC_BITS (proved by the generator)
      // verilator lint_off UNUSEDSIGNAL
      logic signed [W_BITS+VW-1:0]  prod;
      // verilator lint_on UNUSEDSIGNAL
      old      = (fwd_valid && fwd_addr == m2_addr) ? fwd_data : acc_rd;
      acc      = $signed(old[ACC_BITS-1:0]);
      prod     = $signed(m2_w) * $signed(m2_value);
      acc      = acc + ACC_BITS'(prod);
      mac_new  = {1'b1, old[AWW-2 -: XB], acc};
      mac_we   = m2_valid && m2_ok;
      mac_push = mac_we && !old[AWW-1];
    end
    assign lane_mac[l]    = mac_we;
    assign lane_busy[l]   = q_count != '0 || cur_valid || m1_valid || m2_valid;

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
        m2_oy     <= m1_oy;
        m2_ox     <= m1_ox;
        m2_value  <= m1_value;
        m2_w      <= w_rd[W_BITS-1:0];
        m2_fb     <= m1_fb;
        m2_addr   <= acc_addr(m1_oy, m1_ox, m1_fb);
        fwd_valid <= mac_we;
        fwd_addr  <= m2_addr;
        fwd_data  <= mac_new;
      end
    end

    // ---------------------------------------------------------- dirty list
    logic [DLW-1:0] dlist[DEPTH];
    logic [DLW-1:0] dl_rd;
    logic [AW:0]    dcount;
    logic           dl_we;
    always_ff @(posedge clk) begin
      if (dl_we) dlist[AW'(dcount)] <= {m2_oy, m2_ox, m2_fb};
      if (rq_issue && !sweep_mode) dl_rd <= dlist[AW'(rq_k)];
    end
    assign lane_dcount[l*(AW+1) +: AW+1] = dcount;

    // ---------------------------------------------------------- requantize (per lane)
    logic           r1_lane, r2_lane;
    logic [DLW-1:0] r1_entry, r2_entry;
    logic [AWW-1:0] rq_new;
    assign r1_entry = sweep_mode ? r1_sw : dl_rd;

    always_ff @(posedge clk) begin
      if (adv) begin
        r1_lane  <= sweep_mode || rq_k < dcount;
        r2_lane  <= r1_lane;
        r2_entry <= r1_entry;
      end
    end

    always_comb begin
      logic [AWW-2:0] w;  // {x_hat, acc}; the dirty bit is not needed here
      logic signed [63:0] y, xh, d, mag;
      int f;
      logic [OYW-1:0] oy;
      logic [OXW-1:0] ox;
      logic [FBW-1:0] fb;
      w  = acc_rd[AWW-2:0];
      {oy, ox, fb} = r2_entry;
      f  = 32'(fb) * LANES + l;
      y  = requantize($signed(w[ACC_BITS-1:0]));
      xh = {{(64 - XB){OUT_SIGNED && w[AWW-2]}}, w[AWW-2 -: XB]};
      d  = y - xh;
      mag = d < 0 ? -d : d;
      if (LAST) rq_mask[l] = r2_valid && r2_lane && f < N_OUT;
      else rq_mask[l] = r2_valid && r2_lane && f < N_OUT && mag > $signed({32'd0, threshold});
      rq_payload[l*EW +: EW] = {YW'(oy), XW'(ox), CW'(f), VW'(LAST ? y : d)};
      rq_new = {1'b0, (!LAST && rq_mask[l]) ? XB'(y) : w[AWW-2 -: XB], w[ACC_BITS-1:0]};
    end

    // ---------------------------------------------------------- memory ports by phase
    always_comb begin
      dl_we = phase == S_MAC && mac_push;
      case (phase)
        S_MAC: begin
          acc_re = m1_valid && m1_ok;
          acc_ra = acc_addr(m1_oy, m1_ox, m1_fb);
          acc_we = mac_we;
          acc_wa = m2_addr;
          acc_wd = mac_new;
        end
        S_RQ: begin
          acc_re = adv;
          acc_ra = acc_addr(r1_entry[DLW-1 -: OYW], r1_entry[FBW+OXW-1 -: OXW], r1_entry[FBW-1:0]);
          acc_we = r2_valid && adv && r2_lane;
          acc_wa = acc_addr(r2_entry[DLW-1 -: OYW], r2_entry[FBW+OXW-1 -: OXW], r2_entry[FBW-1:0]);
          acc_wd = rq_new;
        end
        default: begin  // S_SWEEP
          acc_re = 1'b0;
          acc_ra = '0;
          acc_we = 1'b1;
          acc_wa = acc_addr(sw_oy, sw_ox, sw_fb);
          acc_wd = {1'b0, XB'(0), bias_rom[sw_fb][l*ACC_BITS +: ACC_BITS]};
        end
      endcase
    end

    always_ff @(posedge clk) begin
      if (!rst_n || clear_dirty) dcount <= '0;
      else if (dl_we) dcount <= dcount + 1'b1;
    end
  end

  assign fifo_space = &lane_space;

  // ================================================================ events out
  assign set_push = r2_valid && adv && (|rq_mask);
  assign set_pop  = set_count != '0 && ser_can_load;

  rl2fpga_fifo #(.DEPTH(SD), .W(SETW)) u_sets (
      .clk, .rst_n,
      .push     (set_push),
      .push_data({rq_mask, rq_payload}),
      .pop      (set_pop),
      .head     (set_head),
      .count    (set_count)
  );

  rl2fpga_serializer #(.N(LANES), .PW(EW)) u_ser (
      .clk, .rst_n,
      .can_load    (ser_can_load),
      .load        (set_pop),
      .load_mask   (set_head[SETW-1 -: LANES]),
      .load_payload(set_head[LANES*EW-1:0]),
      .out_valid   (ser_valid),
      .out_ready   (out_ready),
      .out_payload (ser_payload)
  );

  assign rq_done     = phase == S_RQ && rq_k == rq_total && !r1_valid && !r2_valid && set_count == '0 && !ser_valid;
  assign out_valid   = ser_valid || rq_done;
  assign out_last    = !ser_valid;
  assign out_payload = ser_payload;

  // ================================================================ phase sequencing
  logic [AW:0] dcount_max;
  logic [31:0] word_macs, idle_lanes;
  always_comb begin
    dcount_max = '0;
    word_macs  = '0;
    for (int l = 0; l < LANES; l++) begin
      if (lane_dcount[l*(AW+1) +: AW+1] > dcount_max) dcount_max = lane_dcount[l*(AW+1) +: AW+1];
      word_macs = word_macs + (lane_mac[l] ? 32'd1 : 32'd0);
    end
    idle_lanes = |lane_mac ? 32'(LANES) - word_macs : 32'd0;
  end

  // the frame's MACs are done once its marker has been looked up and every lane is idle (the
  // marker itself does not enter the lanes)
  logic macs_done;
  assign macs_done = marker_inflight && !t1_valid && !(|lane_busy);
  assign sweep_end   = 32'(sw_oy) == OUT_H - 1 && 32'(sw_ox) == OUT_W - 1 && 32'(sw_fb) == FB - 1;
  assign clear_dirty = (rq_done && out_ready) || (phase == S_SWEEP && sweep_end);
  assign busy = phase != S_MAC || marker_inflight || t1_valid || (|lane_busy);

  logic [31:0] run_events, run_macs, run_pad;

  task automatic sweep_step();
    if (32'(sw_fb) == FB - 1) begin
      sw_fb <= '0;
      if (32'(sw_ox) == OUT_W - 1) begin
        sw_ox <= '0;
        sw_oy <= sw_oy + 1'b1;
      end else begin
        sw_ox <= sw_ox + 1'b1;
      end
    end else begin
      sw_fb <= sw_fb + 1'b1;
    end
  endtask

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      phase           <= S_MAC;
      all_dirty       <= 1'b1;
      marker_inflight <= 1'b0;
      rq_k            <= '0;
      rq_total        <= '0;
      r1_valid        <= 1'b0;
      r2_valid        <= 1'b0;
      run_events      <= '0;
      run_macs        <= '0;
      run_pad         <= '0;
      last_events     <= '0;
      last_macs       <= '0;
      last_pad        <= '0;
      sw_oy           <= '0;
      sw_ox           <= '0;
      sw_fb           <= '0;
    end else begin
      if (force_all_dirty) all_dirty <= 1'b1;
      case (phase)
        S_MAC: begin
          if (tap_issue && !in_last) run_events <= run_events + 1;
          if (tap_issue && in_last) marker_inflight <= 1'b1;
          run_macs <= run_macs + word_macs;
          run_pad  <= run_pad + idle_lanes;
          if (macs_done) begin
            // every lane has done the frame's MACs: start requantizing
            last_events     <= run_events;
            last_macs       <= run_macs + word_macs;
            last_pad        <= run_pad + idle_lanes;
            run_events      <= '0;
            run_macs        <= '0;
            run_pad         <= '0;
            marker_inflight <= 1'b0;
            phase           <= S_RQ;
            rq_k            <= '0;
            sw_oy           <= '0;
            sw_ox           <= '0;
            sw_fb           <= '0;
            rq_total        <= (all_dirty || LAST) ? (AW + 1)'(DEPTH) : dcount_max;
          end else if (state_reset && !busy) begin
            phase <= S_SWEEP;
            sw_oy <= '0;
            sw_ox <= '0;
            sw_fb <= '0;
          end
        end
        S_RQ: begin
          if (adv) begin
            r1_valid <= rq_issue;
            r1_sw    <= {sw_oy, sw_ox, sw_fb};
            r2_valid <= r1_valid;
          end
          if (rq_issue) begin
            rq_k <= rq_k + 1'b1;
            sweep_step();
          end
          if (rq_done && out_ready) begin
            phase     <= S_MAC;
            all_dirty <= force_all_dirty;
          end
        end
        default: begin  // S_SWEEP
          sweep_step();
          if (sweep_end) begin
            phase     <= S_MAC;
            all_dirty <= 1'b1;
          end
        end
      endcase
    end
  end
endmodule
