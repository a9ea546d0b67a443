// Frame sequencing and performance counters: one frame at a time (the next frame's first beat
// is accepted once the previous action beat has left), state resets between frames (requested
// by CTRL or by rst_n, executed when idle), and the cycle / frame counters of the register map (hls/engine/contract.py).
module rl2fpga_frame_ctrl (
    input  logic        clk,
    input  logic        rst_n,
    input  logic        req_reset_state,     // CTRL bit 0
    input  logic        req_reset_counters,  // CTRL bit 1
    input  logic        frame_start,         // first beat of a frame accepted
    input  logic        action_sent,         // action beat left
    input  logic        engine_busy,         // any stage still working (sweeps included)
    output logic        start_ok,
    output logic        state_reset,         // pulse to every stage
    output logic        busy,
    output logic        frame_done,          // pulse
    output logic [31:0] frames,
    output logic [31:0] last_cycles,
    output logic [63:0] total_cycles
);
  logic        frame_active, reset_pending;
  logic [31:0] cycles_run;

  assign start_ok    = !frame_active && !reset_pending && !engine_busy;
  assign state_reset = reset_pending && !frame_active && !engine_busy;
  assign busy        = frame_active || reset_pending || engine_busy;
  assign frame_done  = action_sent;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      frame_active  <= 1'b0;
      reset_pending <= 1'b1;  // the state memories start with a sweep
      cycles_run    <= '0;
      frames        <= '0;
      last_cycles   <= '0;
      total_cycles  <= '0;
    end else begin
      if (req_reset_state) reset_pending <= 1'b1;
      else if (state_reset) reset_pending <= 1'b0;
      if (frame_start) begin
        frame_active <= 1'b1;
        cycles_run   <= 32'd1;
      end else if (frame_active) begin
        cycles_run <= cycles_run + 1;
      end
      if (req_reset_counters) begin
        frames       <= '0;
        total_cycles <= '0;
      end
      if (action_sent) begin
        frame_active <= 1'b0;
        last_cycles  <= cycles_run + 1;
        frames       <= frames + 1;
        total_cycles <= total_cycles + 64'(cycles_run) + 64'd1;
      end
    end
  end
endmodule
