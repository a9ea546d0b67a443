// Phase control of an event-driven layer: MAC phase (events in) until the frame's end marker
// has been looked up and every lane is idle; then the requantize phase walks the lanes' dirty
// lists (or, after a state reset or a threshold write, every accumulator: sweep mode) in a
// two-stage pipeline (r1: entry, r2: accumulator word) that stalls only while a set of changed
// outputs cannot be queued; then the end marker goes out. A state reset sweeps every
// accumulator back to its bias. Also keeps the layer's event, MAC and padding counters.
module rl2fpga_layer_ctrl
#(
    parameter int OUT_H   = 1,
    parameter int OUT_W   = 1,
    parameter int FB      = 1,   // accumulator words per position
    parameter int FB_BITS = 1,
    parameter int LANES   = 4,
    parameter bit LAST    = 0,
    // derived; not to be overridden
    parameter int DEPTH   = OUT_H * OUT_W * FB,
    parameter int AW      = DEPTH > 1 ? $clog2(DEPTH) : 1,
    parameter int OYW     = OUT_H > 1 ? $clog2(OUT_H) : 1,
    parameter int OXW     = OUT_W > 1 ? $clog2(OUT_W) : 1,
    parameter int DLW     = OYW + OXW + FB_BITS
) (
    input  logic                  clk,
    input  logic                  rst_n,
    input  logic                  state_reset,
    input  logic                  force_all_dirty,
    output logic                  busy,
    // events in
    input  logic                  in_valid,
    input  logic                  in_last,
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
    // events out
    input  logic                  any_send,     // some lane sends an output this cycle
    input  logic                  set_space,    // the set FIFO takes one more set
    input  logic                  set_empty,
    input  logic                  ser_valid,
    input  logic                  out_ready,
    output logic                  rq_done,      // the end marker is being offered
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

  assign sw_entry   = {sw_oy, sw_ox, sw_fb};
  assign in_ready   = phase == rl2fpga_pkg::S_MAC && !marker_inflight && lanes_space;
  assign issue      = in_valid && in_ready;
  // sweep mode is latched for the requantize phase (a threshold write during it counts for the
  // next frame); rq_k and the sweep coordinates are 0 throughout the MAC phase, so the phase's
  // first word is issued in the cycle the MACs finish (rq_first)
  assign sweep_mode  = phase == rl2fpga_pkg::S_RQ ? rq_sweep : all_dirty || LAST;
  assign adv         = !r2_valid || !any_send || set_space;
  assign first_total = (all_dirty || LAST) ? (AW + 1)'(DEPTH) : dcount_max;
  assign rq_first    = phase == rl2fpga_pkg::S_MAC && macs_done && first_total != '0;
  assign rq_issue    = (phase == rl2fpga_pkg::S_RQ && rq_k < rq_total && adv) || rq_first;
  assign rq_done    = phase == rl2fpga_pkg::S_RQ && rq_k == rq_total && !r1_valid && !r2_valid && set_empty && !ser_valid;

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
  assign clear_dirty = (rq_done && out_ready) || (phase == rl2fpga_pkg::S_SWEEP && sweep_end);
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
    end else begin
      if (force_all_dirty) all_dirty <= 1'b1;
      case (phase)
        rl2fpga_pkg::S_MAC: begin
          if (issue && !in_last) run_events <= run_events + 1;
          if (issue && in_last) marker_inflight <= 1'b1;
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
            phase           <= rl2fpga_pkg::S_RQ;
            rq_total        <= first_total;
            rq_sweep        <= all_dirty || LAST;
            all_dirty       <= force_all_dirty;
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
          if (rq_done && out_ready) begin
            phase <= rl2fpga_pkg::S_MAC;
            rq_k  <= '0;
            sw_oy <= '0;
            sw_ox <= '0;
            sw_fb <= '0;
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
