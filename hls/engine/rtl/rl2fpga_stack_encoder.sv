// Input delta encoder for frame-stacked inputs (h, w, K channels = the K newest frames, oldest
// first, one byte per element): the host sends only the newest frame and the encoder keeps the
// K - 1 frames before it, so the delta comparison sees the same (h, w, K) input as the golden
// model while the stream carries 1/K of it.
//
// Stream: a *newest* frame is the newest frame's h * w pixels, BYTES per beat (the last beat
// zero-padded), TLAST on its last beat. A *full* frame is the whole stack as K such planes,
// oldest first (K * beats of one plane): it is expected after a state reset and after
// `full_req` (CTRL), when the kept frames are not the previous observation's. The first K - 1
// planes only fill the kept frames; the last is processed as a newest frame.
//
// Each beat's BYTES pixels are compared, all K channels of each in parallel (BYTES * K
// comparisons), with their transmitted values x_hat (one memory word per beat: BYTES pixels x K
// channels); elements with |x - x_hat| > T become events (flat index -> (y, x, c), delta), as in
// rl2fpga_delta_encoder. Memories (one word per beat of a plane, block RAM): x_hat, and one per
// kept frame (slot k holds channel k of the next frame).
//
// State reset (`state_reset`) sweeps x_hat to 0 (`busy` meanwhile) and expects a full frame.
//
// Row schedule: MARK = 1 sends a row marker (`last`, value 1, the row in y) after the events of
// each input row y with y % MARK_SH == MARK_PH (the rows that finalize a row of layer 0); a
// marker follows the events of the beat that completes its row. DESC = 1: the host sends each
// plane's rows bottom up (row IN_H - 1 first), and events carry the true row. SETQ > 0: the
// event sets of compared beats (and their row markers) wait in a queue of SETQ sets for the
// serializer, so the stream goes on at a beat per cycle while a burst of events is sent.
module rl2fpga_stack_encoder
#(
    parameter int BYTES     = 8,    // stream width in bytes = pixels per beat
    parameter int IN_BITS   = 8,    // element bits (<= 8)
    parameter bit IN_SIGNED = 0,
    parameter int IN_H      = 1,
    parameter int IN_W      = 1,
    parameter int IN_C      = 4,    // K, frames in the stack (>= 2)
    parameter bit MARK      = 0,
    parameter int MARK_SH   = 1,
    parameter int MARK_PH   = 0,
    parameter bit DESC      = 0,
    parameter int SETQ      = 0     // > 0: compared beats' event sets queue here for the serializer
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             state_reset,  // pulse: x_hat <- 0, next frame full (only while idle)
    input  logic             full_req,     // pulse: the next frame is a full stack
    output logic             busy,         // sweeping x_hat
    input  logic             start_ok,     // a new frame may start
    input  logic [31:0]      threshold,    // T_int of layer 0
    output logic             frame_start,  // pulse: first beat of a frame accepted
    output logic             stream_error, // pulse: TLAST not on the frame's last beat
    // AXI4-Stream slave
    input  logic [8*BYTES-1:0] s_axis_tdata,
    input  logic             s_axis_tvalid,
    output logic             s_axis_tready,
    input  logic             s_axis_tlast,
    // events to layer 0
    output logic             ev_valid,
    input  logic             ev_ready,
    output logic             ev_last,
    output logic [rl2fpga_pkg::EW-1:0] ev_payload
);
  // event link widths (rl2fpga_pkg)
  localparam int YW = rl2fpga_pkg::YW, XW = rl2fpga_pkg::XW, CW = rl2fpga_pkg::CW;
  localparam int VW = rl2fpga_pkg::VW;

  localparam int P      = BYTES;                      // pixels per beat
  localparam int K      = IN_C;
  localparam int NPIX   = IN_H * IN_W;
  localparam int N_ELEM = NPIX * K;
  localparam int BEATS  = (NPIX + P - 1) / P;         // beats of one plane
  localparam int BW     = BEATS > 1 ? $clog2(BEATS) : 1;
  localparam int KW_    = K > 1 ? $clog2(K) : 1;
  localparam int FW     = $clog2(N_ELEM + P * K + 1); // flat element index
  localparam int DW     = IN_BITS + 2;                // signed difference
  localparam int PW     = FW + VW;                    // serializer payload {flat, delta}
  localparam int NE     = P * K;                      // candidate events per beat

  // ---------------------------------------------------------------- memories (block RAM)
  logic [NE*IN_BITS-1:0] xhat_mem[BEATS];
  logic [NE*IN_BITS-1:0] xhat_rd, xhat_wd, xhat_new;
  logic                  xhat_we;
  logic [BW-1:0]         xhat_wa;
  localparam int SW_ = P * IN_BITS;                  // bits of one kept-frame word
  logic [(K-1)*SW_-1:0]  slot_rd, slot_wd;            // slot k at [k*SW_ +: SW_]
  logic [K-2:0]          slot_we;
  logic                  rd_en;
  logic [BW-1:0]         rd_addr, slot_wa;

  always_ff @(posedge clk) begin
    if (xhat_we) xhat_mem[xhat_wa] <= xhat_wd;
    if (rd_en) xhat_rd <= xhat_mem[rd_addr];
  end

  for (genvar k = 0; k < K - 1; k++) begin : g_slot
    logic [P*IN_BITS-1:0] mem[BEATS];
    always_ff @(posedge clk) begin
      if (slot_we[k]) mem[slot_wa] <= slot_wd[k*SW_ +: SW_];
      if (rd_en) slot_rd[k*SW_ +: SW_] <= mem[rd_addr];
    end
  end

  // ---------------------------------------------------------------- control state
  logic          sweeping;
  logic [BW-1:0] sweep_addr;
  logic          need_full;  // the next frame is a full stack
  logic          full;       // this frame is a full stack
  logic          in_frame;   // between the first and the last beat
  logic          ending;     // last beat accepted: drain, then send the marker
  logic [BW-1:0] beat;       // index of the next beat in its plane
  logic [KW_-1:0] plane;     // plane of the next beat (full frames)
  logic          s0_valid;   // a beat waits for its comparison
  logic          s0_fill;    // ... or only fills a kept frame (planes 0..K-2 of a full frame)
  logic [KW_-1:0] s0_plane;
  logic [8*BYTES-1:0] s0_data;
  logic [BW-1:0] s0_beat;

  logic          ser_can_load, ser_valid;
  logic [PW-1:0] ser_payload;
  logic          s0_go, s0_cmp, accept, last_beat, full_now;

  // row markers: the row the compared beat completes (in arrival order), if it needs a marker
  logic          mark_pending, beat_mark;
  logic [YW-1:0] mark_y, beat_y;
  always_comb begin
    int rows_b, rows_a, y;
    rows_b    = 32'(s0_beat) * P / IN_W;
    rows_a    = (32'(s0_beat) * P + P < NPIX ? 32'(s0_beat) * P + P : NPIX) / IN_W;
    y         = DESC ? IN_H - rows_a : rows_a - 1;
    beat_y    = YW'(y);
    beat_mark = MARK && rows_a > rows_b && y % MARK_SH == MARK_PH;
  end

  // what the serializer loads next: the compared beat's set (SETQ = 0) or the queue's head
  logic              ser_load, ld_mark, sq_space, sq_empty;
  logic [NE-1:0]     ld_mask;
  logic [NE*PW-1:0]  ld_payload;
  logic [YW-1:0]     ld_y;
  rl2fpga_set_queue #(.SETQ(SETQ), .NE(NE), .BW(BW), .FW(FW), .DW(DW)) u_setq (
      .clk, .rst_n, .s0_cmp, .s0_beat, .cmp_mask, .cmp_payload, .beat_mark, .beat_y,
      .ser_can_load, .mark_pending, .ser_load, .ld_mask, .ld_payload, .ld_mark, .ld_y, .sq_space, .sq_empty
  );

  assign s0_go = s0_valid && (SETQ > 0 ? s0_fill || sq_space : !mark_pending && (s0_fill || ser_can_load));
  assign s0_cmp        = s0_go && !s0_fill;
  assign s_axis_tready = !sweeping && !ending && (in_frame || start_ok) && (!s0_valid || s0_go);
  assign accept        = s_axis_tvalid && s_axis_tready;
  assign busy          = sweeping;
  assign frame_start   = accept && !in_frame;
  assign full_now      = in_frame ? full : need_full;
  assign last_beat     = 32'(beat) == BEATS - 1 && (!full_now || 32'(plane) == K - 1);

  // ---------------------------------------------------------------- comparison of one beat
  logic [NE-1:0]    cmp_mask;
  logic [NE*PW-1:0] cmp_payload;

  always_comb begin
    xhat_new = xhat_rd;
    slot_wd = '0;
    for (int e = 0; e < P; e++) begin
      logic [IN_BITS-1:0] xs[K];
      for (int ch = 0; ch < K; ch++) begin
        xs[ch] = ch < K - 1 ? slot_rd[(ch % (K - 1))*SW_ + e*IN_BITS +: IN_BITS] : s0_data[e*8 +: IN_BITS];
      end
      for (int k = 0; k < K - 1; k++) begin
        slot_wd[k*SW_ + e*IN_BITS +: IN_BITS] = s0_fill ? s0_data[e*8 +: IN_BITS] : xs[k + 1];
      end
      // element e * K + ch of the beat (indices from the loop variables only: constant part
      // selects, which synthesis tools need to keep this loop small)
      for (int ch = 0; ch < K; ch++) begin
        logic signed [DW-1:0] x, xh, d;
        logic [DW-1:0]        mag;
        logic [FW-1:0]        flat;
        if (IN_SIGNED) begin
          x  = DW'($signed(xs[ch]));
          xh = DW'($signed(xhat_rd[(e*K + ch)*IN_BITS +: IN_BITS]));
        end else begin
          x  = DW'({1'b0, xs[ch]});
          xh = DW'({1'b0, xhat_rd[(e*K + ch)*IN_BITS +: IN_BITS]});
        end
        d    = x - xh;
        mag  = d[DW-1] ? DW'(-d) : DW'(d);
        flat = (FW'(s0_beat) * FW'(P) + FW'(e)) * FW'(K) + FW'(ch);
        cmp_mask[e*K + ch] = !s0_fill && (32'(flat) < N_ELEM) && (32'(mag) > threshold);
        cmp_payload[(e*K + ch)*PW +: PW] = {flat, VW'(d)};
        if (cmp_mask[e*K + ch]) xhat_new[(e*K + ch)*IN_BITS +: IN_BITS] = xs[ch];
      end
    end
  end

  assign xhat_we = sweeping || s0_cmp;
  assign xhat_wd = sweeping ? '0 : xhat_new;
  assign xhat_wa = sweeping ? sweep_addr : s0_beat;
  assign rd_en   = accept;
  assign rd_addr = beat;
  assign slot_wa = s0_beat;
  always_comb begin
    for (int k = 0; k < K - 1; k++) slot_we[k] = s0_go && (!s0_fill || 32'(s0_plane) == k);
  end

  rl2fpga_serializer #(.N(NE), .PW(PW)) u_ser (
      .clk, .rst_n,
      .can_load    (ser_can_load),
      .load        (ser_load),
      .load_mask   (ld_mask),
      .load_payload(ld_payload),
      .out_valid   (ser_valid),
      .out_ready   (ev_ready),
      .out_payload (ser_payload)
  );

  // ---------------------------------------------------------------- events out
  logic [FW-1:0] ev_flat;
  logic [VW-1:0] ev_value;
  logic          marker;

  assign ev_flat  = ser_payload[PW-1 -: FW];
  assign ev_value = ser_payload[VW-1:0];
  logic          rmark;
  logic [YW-1:0] ev_y;
  assign rmark    = mark_pending && !ser_valid;
  assign marker   = ending && !s0_valid && sq_empty && !ser_valid && !mark_pending;
  assign ev_valid = ser_valid || rmark || marker;
  assign ev_last  = !ser_valid;
  assign ev_y     = DESC ? YW'(IN_H - 1 - 32'(ev_flat) / (IN_W * K)) : YW'(32'(ev_flat) / (IN_W * K));
  assign ev_payload = ser_valid ? {ev_y, XW'((32'(ev_flat) / K) % IN_W), CW'(32'(ev_flat) % K), ev_value}
                    : rmark ? {mark_y, XW'(0), CW'(0), VW'(1)} : '0;

  // ---------------------------------------------------------------- sequencing
  always_ff @(posedge clk) begin
    stream_error <= 1'b0;
    if (!rst_n) begin
      sweeping     <= 1'b0;
      sweep_addr   <= '0;
      need_full    <= 1'b1;
      full         <= 1'b0;
      in_frame     <= 1'b0;
      ending       <= 1'b0;
      beat         <= '0;
      plane        <= '0;
      s0_valid     <= 1'b0;
      mark_pending <= 1'b0;
    end else begin
      if (state_reset && !in_frame && !ending) begin
        sweeping   <= 1'b1;
        sweep_addr <= '0;
        need_full  <= 1'b1;
      end else if (sweeping) begin
        sweep_addr <= sweep_addr + 1'b1;
        if (32'(sweep_addr) == BEATS - 1) sweeping <= 1'b0;
      end
      if (full_req) need_full <= 1'b1;
      if (s0_go) s0_valid <= 1'b0;
      if (accept) begin
        s0_valid <= 1'b1;
        s0_fill  <= full_now && 32'(plane) != K - 1;
        s0_plane <= plane;
        s0_data  <= s_axis_tdata;
        s0_beat  <= beat;
        if (!in_frame) full <= need_full;
        if (last_beat) begin
          beat     <= '0;
          plane    <= '0;
          in_frame <= 1'b0;
          ending   <= 1'b1;
          stream_error <= !s_axis_tlast;
          if (full_now && !full_req) need_full <= 1'b0;
        end else begin
          in_frame <= 1'b1;
          stream_error <= s_axis_tlast;
          if (32'(beat) == BEATS - 1) begin
            beat  <= '0;
            plane <= plane + 1'b1;
          end else begin
            beat <= beat + 1'b1;
          end
        end
      end
      if (marker && ev_ready) ending <= 1'b0;
      if (ser_load && ld_mark) begin
        mark_pending <= 1'b1;
        mark_y       <= ld_y;
      end else if (rmark && ev_ready) begin
        mark_pending <= 1'b0;
      end
    end
  end
endmodule
