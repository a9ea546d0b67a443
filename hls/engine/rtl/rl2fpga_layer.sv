// Event-driven layer of the sparse delta engine (dense or valid-padding conv2d): the wiring of
// its parts, each a module of one job (rl2fpga_list_lookup, rl2fpga_lane with
// rl2fpga_list_walker and rl2fpga_requant, rl2fpga_layer_ctrl, rl2fpga_fifo, rl2fpga_serializer).
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
    parameter int    SHIFT_BITS = 0,   // > 0: per-output-channel shifts from SHIFT_FILE
    parameter bit    RELU       = 1,
    parameter bit    LAST       = 0,   // last layer: send every output value, no threshold
    parameter int    TAB_DEPTH  = 4,
    parameter int    PTR_BITS   = 8,
    parameter int    LEN_BITS   = 4,
    parameter int    WMEM_DEPTH = 16,
    // widths of the memory images, computed once by the generator (hls/engine/contract.py)
    parameter int    FB_BITS    = 1,   // accumulator-word index fb of an entry
    parameter int    TAP_BITS   = 0,   // tap index of an entry (conv; 0 for one tap)
    // weight storage format (hls/engine/formats.py): 0 csc {tap, fb, w} words + {len, ptr}
    // table; 1 rel {run, w} words (fillers w = 0) + table; 2 dense: w of every position, no
    // table; 3 bitmap: w words of the nonzeros + {bitmap, ptr} table (LEN_BITS = bitmap bits)
    parameter int    FORMAT     = 0,
    // schedule (rl2fpga_layer_ctrl): ROWS walks each output row once it is final (conv), rows
    // arriving bottom up if DESC; MARK_OUT sends a row marker after each output row
    parameter bit    ROWS       = 0,
    parameter bit    DESC       = 0,
    parameter bit    MARK_OUT   = 0,
    parameter int    ENTRY_BITS = TAP_BITS + FB_BITS + W_BITS,  // one stored word
    parameter int    RUN_BITS   = 0,   // rel: relative index bits
    parameter int    LIST_LEN   = 1,   // dense: words per list part; bitmap: its bits (taps x FB)
    parameter int    B_BITS     = ACC_BITS,  // bias image field per lane, sign-extended (<= ACC_BITS)
    parameter WMEM_FILE  = "",
    parameter TAB_FILE   = "",
    parameter BIAS_FILE  = "",
    parameter SHIFT_FILE = ""
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
  localparam int YW = rl2fpga_pkg::YW, XW = rl2fpga_pkg::XW, VW = rl2fpga_pkg::VW, EW = rl2fpga_pkg::EW;
  localparam int FB    = (N_OUT + LANES - 1) / LANES;       // accumulator words per position
  localparam int DEPTH = OUT_H * OUT_W * FB;                 // words per bank
  localparam int AW    = DEPTH > 1 ? $clog2(DEPTH) : 1;
  localparam int OYW   = OUT_H > 1 ? $clog2(OUT_H) : 1;
  localparam int OXW   = OUT_W > 1 ? $clog2(OUT_W) : 1;
  localparam int DLW   = OYW + OXW + FB_BITS;                // dirty list entry {oy, ox, fb}
  localparam int TEW   = LEN_BITS + PTR_BITS;                // one lane's {len, ptr}
  localparam int MH    = KIND == 1 ? (KH + SH - 1) / SH : 1;  // candidate taps per event: MH x MW
  localparam int MW    = KIND == 1 ? (KW + SW - 1) / SW : 1;
  localparam int SD    = rl2fpga_pkg::SET_FIFO_DEPTH;
  localparam int SETW  = LANES + LANES * EW;                 // {mask, payloads}

  // the memory images were laid out by the generator: refuse to elaborate if its widths are not
  // the ones this geometry needs (a stale or hand-edited top level)
  if (TAP_BITS != (MH * MW > 1 ? $clog2(MH * MW) : 0) || FB_BITS != (FB > 1 ? $clog2(FB) : 1)
      || ENTRY_BITS != (FORMAT == 0 ? TAP_BITS + FB_BITS : FORMAT == 1 ? RUN_BITS : 0) + W_BITS
      || (FORMAT >= 2 && LIST_LEN != MH * MW * FB) || (FORMAT == 3 && LEN_BITS != LIST_LEN)
      || B_BITS < 1 || B_BITS > ACC_BITS) begin : g_bad_widths
    $error("rl2fpga_layer: TAP_BITS/FB_BITS/ENTRY_BITS/LIST_LEN/B_BITS do not match the layer geometry; regenerate the engine");
  end

  // ================================================================ list lookup
  logic                 issue, t1_valid, t1_marker, lanes_space;
  logic [YW-1:0]        t1_qy;
  logic [XW-1:0]        t1_qx;
  logic [VW-1:0]        t1_value;
  logic [LANES*TEW-1:0] tab_rd;

  rl2fpga_list_lookup #(
      .KIND(KIND), .IN_W(IN_W), .IN_C(IN_C), .SH(SH), .SW(SW), .LANES(LANES),
      .TAB_DEPTH(TAB_DEPTH), .PTR_BITS(PTR_BITS), .LEN_BITS(LEN_BITS), .TABLE(FORMAT != 2),
      .LIST_LEN(LIST_LEN), .TAB_FILE(TAB_FILE)
  ) u_lookup (
      .clk, .rst_n, .issue, .in_last, .in_payload, .t1_valid, .t1_marker, .t1_qy, .t1_qx,
      .t1_value, .tab_rd
  );

  // ================================================================ control
  rl2fpga_pkg::phase_t                  phase;
  logic                    adv, rq_issue, sweep_mode, r2_valid, clear_dirty;
  logic                    clear_row, mark_valid, hold_sets, lanes_hold;
  logic [OYW-1:0]          walk_row;
  logic [EW-1:0]           mark_payload;
  logic [AW:0]             rq_k;
  logic [DLW-1:0]          r1_sw, sw_entry;
  logic [LANES-1:0]        lane_space, lane_busy, lane_busy_early, lane_mac, rq_mask;
  logic [LANES*(AW+1)-1:0] lane_dcount;
  logic [LANES*EW-1:0]     rq_payload;
  logic                    set_push, set_pop, ser_can_load, ser_valid;
  logic [SETW-1:0]         set_head;
  logic [$clog2(SD+1)-1:0] set_count;
  logic [EW-1:0]           ser_payload;

  assign lanes_space = &lane_space;

  rl2fpga_layer_ctrl #(
      .OUT_H(OUT_H), .OUT_W(OUT_W), .FB(FB), .FB_BITS(FB_BITS), .LANES(LANES), .LAST(LAST),
      .ROWS(ROWS), .DESC(DESC), .MARK_OUT(MARK_OUT), .KH(KH), .SH(SH)
  ) u_ctrl (
      .clk, .rst_n, .state_reset, .force_all_dirty, .busy, .in_valid, .in_last,
      .in_rowmark(in_payload[VW-1:0] != '0), .in_row(in_payload[EW-1 -: YW]), .in_ready,
      .issue, .lanes_space, .t1_valid, .lane_busy, .lane_busy_early, .lane_mac, .lane_dcount, .phase, .adv,
      .rq_issue, .rq_k, .sweep_mode, .r1_sw, .r2_valid, .sw_entry, .clear_dirty,
      .clear_row, .walk_row, .lanes_hold, .mark_valid, .mark_payload,
      .any_send(|rq_mask), .set_space(32'(set_count) < SD), .set_empty(set_count == '0),
      .set_count, .set_pop, .hold_sets, .ser_valid, .out_ready, .last_events, .last_macs, .last_pad
  );

  // ================================================================ lanes
  logic [LANES*B_BITS-1:0] bias_rom[FB];
  initial $readmemh(BIAS_FILE, bias_rom);

  for (genvar l = 0; l < LANES; l++) begin : g_lane
    rl2fpga_lane #(
        .LANE(l), .MW(MW), .OUT_H(OUT_H), .OUT_W(OUT_W), .N_OUT(N_OUT), .LANES(LANES),
        .W_BITS(W_BITS), .ACC_BITS(ACC_BITS), .OUT_BITS(OUT_BITS), .OUT_SIGNED(OUT_SIGNED),
        .SHIFT(SHIFT), .SHIFT_BITS(SHIFT_BITS), .SHIFT_FILE(SHIFT_FILE), .RELU(RELU), .LAST(LAST),
        .PTR_BITS(PTR_BITS), .LEN_BITS(LEN_BITS), .WMEM_DEPTH(WMEM_DEPTH), .FB_BITS(FB_BITS),
        .TAP_BITS(TAP_BITS), .FORMAT(FORMAT), .ROWS(ROWS), .ENTRY_BITS(ENTRY_BITS), .RUN_BITS(RUN_BITS),
        .WMEM_FILE(WMEM_FILE)
    ) u_lane (
        .clk, .rst_n, .phase, .threshold, .t1_valid, .t1_marker, .t1_qy, .t1_qx, .t1_value,
        .t1_tab(tab_rd[l*TEW +: TEW]), .space(lane_space[l]), .busy(lane_busy[l]),
        .busy_early(lane_busy_early[l]), .mac(lane_mac[l]),
        .dcount_next(lane_dcount[l*(AW+1) +: AW+1]), .walk_row, .clear_row, .hold(lanes_hold), .adv, .rq_issue, .rq_k,
        .sweep_mode, .r1_sw, .r2_valid, .sw_entry,
        .sw_bias(ACC_BITS'($signed(bias_rom[sw_entry[FB_BITS-1:0]][l*B_BITS +: B_BITS]))), .clear_dirty,
        .rq_mask(rq_mask[l]), .rq_payload(rq_payload[l*EW +: EW])
    );
  end

  // ================================================================ events out
  // sets of changed outputs wait in a small FIFO for the serializer, so the walk does not stop
  // while a set is being sent (walking and sending overlap); a set that finds the FIFO empty and
  // the serializer free goes straight into the serializer
  logic set_new, set_direct;
  assign set_new    = r2_valid && adv && (|rq_mask);
  assign set_direct = set_new && set_count == '0 && ser_can_load && !hold_sets;
  assign set_push   = set_new && !set_direct;
  assign set_pop    = set_count != '0 && ser_can_load && !hold_sets;

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
      .load        (set_pop || set_direct),
      .load_mask   (set_pop ? set_head[SETW-1 -: LANES] : rq_mask),
      .load_payload(set_pop ? set_head[LANES*EW-1:0] : rq_payload),
      .out_valid   (ser_valid),
      .out_ready   (out_ready),
      .out_payload (ser_payload)
  );

  assign out_valid   = ser_valid || mark_valid;
  assign out_last    = !ser_valid;
  assign out_payload = ser_valid ? ser_payload : mark_payload;
endmodule
