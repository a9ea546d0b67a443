// Phase control of an event-driven layer: MAC phase (events in) until the frame's end marker
// has been looked up and every lane is idle; then the requantize phase walks the lanes' dirty
// lists (or, after a state reset or a threshold write, every accumulator: sweep mode) in a
// two-stage pipeline (r1: entry, r2: accumulator word) that stalls only while a set of changed
// outputs cannot be queued; then the end marker goes out. A state reset sweeps every
// accumulator back to its bias. Also keeps the layer's event, MAC and padding counters.
//
// Row schedule (ROWS = 1, conv layers): the input link also carries a row marker (`last` with
// value 1 and the row in y) after each input row the layer needs. Rows arrive in order, top
// down (DESC = 0) or bottom up (DESC = 1), so the marker of input row y finalizes output row oy
// (y = oy * SH + KH - 1, or y = oy * SH bottom up): no later event touches it. Its MACs done,
// the layer walks that row's dirty list (or, in sweep mode, every word of the row), sends its
// changed outputs and, if MARK_OUT, a row marker of its own; then it takes events again. The
// frame's end marker then finds every row walked and is passed on.
module rl2fpga_layer_ctrl
#(
    parameter int OUT_H   = 1,
    parameter int OUT_W   = 1,
    parameter int FB      = 1,   // accumulator words per position
    parameter int FB_BITS = 1,
    parameter int LANES   = 4,
    parameter bit LAST    = 0,
    parameter bit ROWS    = 0,   // row schedule (conv)
    parameter bit DESC    = 0,   // rows arrive bottom up
    parameter bit MARK_OUT = 0,  // send a row marker after each output row
    parameter int KH      = 1,
    parameter int SH      = 1,
    // derived; not to be overridden
    parameter int DEPTH   = OUT_H * OUT_W * FB,
    parameter int AW      = DEPTH > 1 ? $clog2(DEPTH) : 1,
    parameter int OYW     = OUT_H > 1 ? $clog2(OUT_H) : 1,
    parameter int OXW     = OUT_W > 1 ? $clog2(OUT_W) : 1,
    parameter int DLW     = OYW + OXW + FB_BITS,
    parameter int ROWW    = ROWS ? OUT_W * FB : DEPTH  // words a walk covers in sweep mode
) (
    input  logic                  clk,
    input  logic                  rst_n,
    input  logic                  state_reset,
    input  logic                  force_all_dirty,
    output logic                  busy,
    // events in
    input  logic                  in_valid,
    input  logic                  in_last,
    input  logic                  in_rowmark,   // in_last is a row marker (ROWS)
    input  logic [rl2fpga_pkg::YW-1:0] in_row,  // its input row
    output logic                  in_ready,
    output logic                  issue,        // an event (or the marker) is taken
    input  logic                  lanes_space,  // every lane's list FIFO takes one more list
    input  logic                  t1_valid,
    // lanes
    input  logic [LANES-1:0]      lane_busy,
    input  logic [LANES-1:0]      lane_busy_early,  // busy but for the last MAC stage
    input  logic [LANES-1:0]      lane_mac,
    input  logic [LANES*(AW+1)-1:0] lane_dcount,    // dirty list lengths after this cycle
    output rl2fpga_pkg::phase_t                phase,
    output logic                  adv,          // the requantize pipeline advances
    output logic                  rq_issue,
    output logic [AW:0]           rq_k,
    output logic                  sweep_mode,
    output logic [DLW-1:0]        r1_sw,
    output logic                  r2_valid,
    output logic [DLW-1:0]        sw_entry,     // {oy, ox, fb} of the sweep
    output logic                  clear_dirty,
    output logic                  clear_row,    // the walked row's dirty list is done (ROWS)
    output logic [OYW-1:0]        walk_row,     // the output row being finalized (ROWS; else 0)
    output logic                  lanes_hold,   // a row is being walked: the lanes' lists wait
    // events out
    input  logic                  any_send,     // some lane sends an output this cycle
    input  logic                  set_space,    // the set FIFO takes one more set
    input  logic                  set_empty,
    input  logic [$clog2(rl2fpga_pkg::SET_FIFO_DEPTH+1)-1:0] set_count,
    input  logic                  set_pop,      // a queued set goes to the serializer
    output logic                  hold_sets,    // a row marker goes first
    input  logic                  ser_valid,
    input  logic                  out_ready,
    output logic                  mark_valid,   // a marker is offered
    output logic [rl2fpga_pkg::EW-1:0] mark_payload,  // 0: end of frame; value 1: end of row y
    // counters of the last finished frame
    output logic [31:0]           last_events,
    output logic [31:0]           last_macs,
    output logic [31:0]           last_pad
);
  logic           all_dirty, rq_sweep, marker_inflight, r1_valid, sweep_end, macs_done, rq_first;
  logic [AW:0]    rq_total, dcount_max, first_total;
  logic [OYW-1:0] sw_oy;
  logic [OXW-1:0] sw_ox;
  logic [FB_BITS-1:0] sw_fb;
  logic [31:0]    word_macs, idle_lanes, run_events, run_macs, run_pad;
  logic           row_walk, frame_open, fin_row, cur_sweep, rq_finish;
  logic [OYW-1:0] fin_oy, wrow, mk_row;
  logic           walk_drained, row_end, mk_valid, mk_send, rq_done;
  localparam int SCW = $clog2(rl2fpga_pkg::SET_FIFO_DEPTH + 1);
  logic [SCW-1:0] mk_ahead;  // sets to send before the marker

  // the output row a row marker finalizes (if any)
  always_comb begin
    int y;
    y       = 32'(in_row);
    fin_row = 1'b0;
    fin_oy  = '0;
    if (ROWS) begin
      if (DESC) begin
        fin_row = y % SH == 0 && y / SH < OUT_H;
        fin_oy  = OYW'(y / SH);
      end else begin
        fin_row = y >= KH - 1 && (y - KH + 1) % SH == 0 && (y - KH + 1) / SH < OUT_H;
        fin_oy  = OYW'((y - KH + 1) / SH);
      end
    end
  end

  assign sw_entry   = {sw_oy, sw_ox, sw_fb};
  // row schedule: while a row is walked, events (not markers) go on into the lanes' list FIFOs
  // (they are for later rows, which the walk does not touch); the lanes hold them until it ends
  assign lanes_hold = ROWS && phase == rl2fpga_pkg::S_RQ && row_walk;
  assign in_ready   = lanes_space && ((phase == rl2fpga_pkg::S_MAC && !marker_inflight) || (lanes_hold && !in_last));
  assign issue      = in_valid && in_ready;
  // sweep mode is latched for the requantize phase (a threshold write during it counts for the
  // next frame); rq_k and the sweep coordinates are 0 throughout the MAC phase, so the phase's
  // first word is issued in the cycle the MACs finish (rq_first)
  // (row schedule: the sweep flag is latched at the frame's first row walk and holds for the frame)
  assign cur_sweep   = (ROWS && frame_open) ? rq_sweep : all_dirty || LAST;
  assign sweep_mode  = phase == rl2fpga_pkg::S_RQ ? rq_sweep : cur_sweep;
  assign adv         = !r2_valid || !any_send || set_space;
  assign first_total = (ROWS && !row_walk) ? '0 : cur_sweep ? (AW + 1)'(ROWW) : dcount_max;
  assign rq_first    = phase == rl2fpga_pkg::S_MAC && macs_done && first_total != '0;
  assign rq_issue    = (phase == rl2fpga_pkg::S_RQ && rq_k < rq_total && adv) || rq_first;
  assign walk_drained = phase == rl2fpga_pkg::S_RQ && rq_k == rq_total && !r1_valid && !r2_valid;
  assign rq_done      = walk_drained && set_empty && !ser_valid && !mk_valid;
  // a row walk ends once its words are walked (its outputs may still wait to be sent: MACs go
  // on meanwhile); its row marker waits in mk_* until the sets queued before it have been sent,
  // while later sets wait behind it (hold_sets). One marker waits at a time.
  assign row_end      = ROWS && row_walk && walk_drained && (!MARK_OUT || !mk_valid);
  assign mk_send      = mk_valid && mk_ahead == '0 && !ser_valid;
  assign hold_sets    = mk_valid && mk_ahead == '0;
  assign mark_valid   = (rq_done && !row_walk) || mk_send;
  assign rq_finish    = row_walk ? row_end : rq_done && out_ready;
  assign mark_payload = mk_send ? {rl2fpga_pkg::YW'(mk_row), rl2fpga_pkg::XW'(0), rl2fpga_pkg::CW'(0), rl2fpga_pkg::VW'(1)} : '0;
  assign clear_row    = ROWS && row_walk && rq_finish;

  always_comb begin
    dcount_max = '0;
    word_macs  = '0;
    for (int l = 0; l < LANES; l++) begin
      if (lane_dcount[l*(AW+1) +: AW+1] > dcount_max) dcount_max = lane_dcount[l*(AW+1) +: AW+1];
      word_macs = word_macs + (lane_mac[l] ? 32'd1 : 32'd0);
    end
    idle_lanes = |lane_mac ? 32'(LANES) - word_macs : 32'd0;
  end

  // the frame's MACs are done once its marker has been looked up and every lane is idle but for
  // its last MAC stage (the marker itself does not enter the lanes): that stage writes its
  // accumulator and dirty-list entry at this clock edge, before the requantize phase reads them
  assign macs_done   = marker_inflight && !t1_valid && !(|lane_busy_early);
  assign sweep_end   = 32'(sw_oy) == OUT_H - 1 && 32'(sw_ox) == OUT_W - 1 && 32'(sw_fb) == FB - 1;
  assign walk_row    = ROWS ? wrow : '0;
  assign clear_dirty = (!ROWS && rq_done && out_ready) || (phase == rl2fpga_pkg::S_SWEEP && sweep_end);
  assign busy = phase != rl2fpga_pkg::S_MAC || marker_inflight || t1_valid || (|lane_busy);

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
      phase           <= rl2fpga_pkg::S_MAC;
      all_dirty       <= 1'b1;
      marker_inflight <= 1'b0;
      rq_k            <= '0;
      rq_total        <= '0;
      rq_sweep        <= 1'b0;
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
      row_walk        <= 1'b0;
      frame_open      <= 1'b0;
      wrow            <= '0;
      mk_valid        <= 1'b0;
      mk_ahead        <= '0;
      mk_row          <= '0;
    end else begin
      if (force_all_dirty) all_dirty <= 1'b1;
      if (MARK_OUT && row_end) begin
        mk_valid <= 1'b1;
        mk_row   <= wrow;
        mk_ahead <= set_count - SCW'(set_pop);
      end else begin
        if (mk_valid && set_pop && mk_ahead != '0) mk_ahead <= mk_ahead - SCW'(1);
        if (mk_send && out_ready) mk_valid <= 1'b0;
      end
      case (phase)
        rl2fpga_pkg::S_MAC: begin
          if (issue && !in_last) run_events <= run_events + 1;
          // a row marker that finalizes no row is only taken
          if (issue && in_last && (!ROWS || !in_rowmark || fin_row)) marker_inflight <= 1'b1;
          if (ROWS && issue && in_last) begin
            row_walk <= in_rowmark;
            if (in_rowmark && fin_row) begin
              wrow  <= fin_oy;
              sw_oy <= fin_oy;
            end
          end
          run_macs <= run_macs + word_macs;
          run_pad  <= run_pad + idle_lanes;
          if (macs_done) begin
            // every lane has done the frame's (row schedule: the row's) MACs: start requantizing
            if (!ROWS || !row_walk) begin
              last_events     <= run_events;
              last_macs       <= run_macs + word_macs;
              last_pad        <= run_pad + idle_lanes;
              run_events      <= '0;
              run_macs        <= '0;
              run_pad         <= '0;
            end
            marker_inflight <= 1'b0;
            phase           <= rl2fpga_pkg::S_RQ;
            rq_total        <= first_total;
            if (!ROWS || (row_walk && !frame_open)) begin
              rq_sweep  <= all_dirty || LAST;
              all_dirty <= force_all_dirty;
            end
            if (ROWS && row_walk) frame_open <= 1'b1;
            // the first word (k = 0, sweep entry 0) is issued now
            r1_valid        <= rq_first;
            r1_sw           <= sw_entry;
            r2_valid        <= 1'b0;
            if (rq_first) begin
              rq_k <= (AW + 1)'(1);
              sweep_step();
            end
          end else if (state_reset && !busy) begin
            phase <= rl2fpga_pkg::S_SWEEP;
          end
        end
        rl2fpga_pkg::S_RQ: begin
          if (adv) begin
            r1_valid <= rq_issue;
            r1_sw    <= sw_entry;
            r2_valid <= r1_valid;
          end
          if (rq_issue) begin
            rq_k <= rq_k + 1'b1;
            sweep_step();
          end
          if (issue) run_events <= run_events + 1;  // (only while a row is walked)
          if (rq_finish) begin
            phase <= rl2fpga_pkg::S_MAC;
            rq_k  <= '0;
            sw_oy <= '0;
            sw_ox <= '0;
            sw_fb <= '0;
            if (ROWS && !row_walk) frame_open <= 1'b0;  // the frame's end marker left
            row_walk <= 1'b0;
          end
        end
        default: begin  // S_SWEEP
          sweep_step();
          if (sweep_end) begin
            phase     <= rl2fpga_pkg::S_MAC;
            all_dirty <= 1'b1;
            sw_oy     <= '0;
            sw_ox     <= '0;
            sw_fb     <= '0;
          end
        end
      endcase
    end
  end
endmodule
