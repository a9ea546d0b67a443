// Input delta encoder: the frame arrives as AXI4-Stream beats of EPB elements; each beat is
// compared, all elements in parallel and in the cycle it is accepted, with the transmitted
// values x_hat kept in a memory of one word per beat (the word of the next beat is read ahead).
// Elements with |x - x_hat| > T become events (flat index -> (y, x, c), delta) and update
// x_hat; a beat with several events stalls the stream while they are serialised. After the
// frame's last beat the encoder sends the end-of-frame marker. A vector input (IN_H = IN_W = 1)
// offers a beat's first event in the cycle the beat is accepted (serializer pass-through).
//
// State reset (`state_reset`) sweeps x_hat to 0, one word per cycle (`busy` meanwhile).
module rl2fpga_delta_encoder
#(
    parameter int BYTES     = 8,    // stream width in bytes
    parameter int EB        = 1,    // bytes per element (1 or 2)
    parameter int IN_BITS   = 8,    // element bits
    parameter bit IN_SIGNED = 0,
    parameter int IN_H      = 1,    // network input shape (channels-last; vectors: 1, 1, n)
    parameter int IN_W      = 1,
    parameter int IN_C      = 4
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             state_reset,  // pulse: x_hat <- 0 (only while idle)
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

  localparam int EPB    = BYTES / EB;
  localparam int N_ELEM = IN_H * IN_W * IN_C;
  localparam int BEATS  = (N_ELEM + EPB - 1) / EPB;
  localparam int BW     = BEATS > 1 ? $clog2(BEATS) : 1;
  localparam int FW     = $clog2(N_ELEM + EPB + 1);  // flat element index
  localparam int DW     = IN_BITS + 2;               // signed difference
  localparam int PW     = FW + VW;                   // serializer payload {flat, delta}
  localparam bit VEC    = IN_H == 1 && IN_W == 1;    // flat index = channel

  // ---------------------------------------------------------------- x_hat memory (BRAM)
  logic [EPB*IN_BITS-1:0] xhat_mem[BEATS];
  logic [EPB*IN_BITS-1:0] xhat_rd, xhat_wd, xhat_new;
  logic                   xhat_we, xhat_re;
  logic [BW-1:0]          xhat_wa, xhat_ra;

  always_ff @(posedge clk) begin
    if (xhat_we) xhat_mem[xhat_wa] <= xhat_wd;
    // write-first: a read of the word written in the same edge returns the new word (the
    // cycle after a state reset's sweep, or after a one-beat frame, may compare a beat with it)
    if (xhat_re) xhat_rd <= xhat_we && xhat_wa == xhat_ra ? xhat_wd : xhat_mem[xhat_ra];
  end

  // ---------------------------------------------------------------- control state
  logic          sweeping;
  logic [BW-1:0] sweep_addr;
  logic          in_frame;   // between the first and the last beat
  logic          ending;     // last beat accepted: drain, then send the marker
  logic [BW-1:0] beat;       // index of the next beat
  logic [BW-1:0] next_beat;

  logic          ser_can_load, ser_valid;
  logic [PW-1:0] ser_payload;
  logic          accept;     // the beat is compared and handed to the serializer

  assign next_beat     = 32'(beat) == BEATS - 1 ? '0 : beat + 1'b1;
  assign s_axis_tready = !sweeping && !ending && (in_frame || start_ok) && ser_can_load;
  assign accept        = s_axis_tvalid && s_axis_tready;
  assign busy          = sweeping;
  assign frame_start   = accept && !in_frame;

  // ---------------------------------------------------------------- comparison of one beat
  logic [EPB-1:0]         cmp_mask;
  logic [EPB*PW-1:0]      cmp_payload;

  always_comb begin
    xhat_new = xhat_rd;
    for (int e = 0; e < EPB; e++) begin
      logic signed [DW-1:0] x, xh, d;
      logic [DW-1:0]        mag;
      logic [FW-1:0]        flat;
      if (IN_SIGNED) begin
        x  = DW'($signed(s_axis_tdata[e*8*EB +: IN_BITS]));
        xh = DW'($signed(xhat_rd[e*IN_BITS +: IN_BITS]));
      end else begin
        x  = DW'({1'b0, s_axis_tdata[e*8*EB +: IN_BITS]});
        xh = DW'({1'b0, xhat_rd[e*IN_BITS +: IN_BITS]});
      end
      d    = x - xh;
      mag  = d[DW-1] ? DW'(-d) : DW'(d);
      flat = FW'(beat) * FW'(EPB) + FW'(e);
      cmp_mask[e]    = (32'(flat) < N_ELEM) && (32'(mag) > threshold);
      cmp_payload[e*PW +: PW] = {flat, VW'(d)};
      if (cmp_mask[e]) xhat_new[e*IN_BITS +: IN_BITS] = s_axis_tdata[e*8*EB +: IN_BITS];
    end
  end

  // x_hat of the beat to come is read every cycle (the accepted beat's successor in the cycle
  // a beat is accepted), so it is there when that beat arrives; a beat right after the write
  // of its word (a one-beat frame, a sweep) reads the new word (write-first, above)
  assign xhat_we = sweeping || accept;
  assign xhat_wd = sweeping ? '0 : xhat_new;
  assign xhat_wa = sweeping ? sweep_addr : beat;
  assign xhat_re = 1'b1;
  assign xhat_ra = accept ? next_beat : beat;

  rl2fpga_serializer #(.N(EPB), .PW(PW), .PASS(VEC)) u_ser (
      .clk, .rst_n,
      .can_load    (ser_can_load),
      .load        (accept),
      .load_mask   (cmp_mask),
      .load_payload(cmp_payload),
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
  assign marker   = ending && !ser_valid;
  assign ev_valid = ser_valid || marker;
  assign ev_last  = !ser_valid;
  if (VEC) begin : g_vec
    assign ev_payload = {YW'(0), XW'(0), CW'(ev_flat), ev_value};
  end else begin : g_map
    assign ev_payload = {YW'(32'(ev_flat) / (IN_W * IN_C)),
                         XW'((32'(ev_flat) / IN_C) % IN_W),
                         CW'(32'(ev_flat) % IN_C),
                         ev_value};
  end

  // ---------------------------------------------------------------- sequencing
  always_ff @(posedge clk) begin
    stream_error <= 1'b0;
    if (!rst_n) begin
      sweeping     <= 1'b0;
      sweep_addr   <= '0;
      in_frame     <= 1'b0;
      ending       <= 1'b0;
      beat         <= '0;
    end else begin
      if (state_reset && !in_frame && !ending) begin
        sweeping   <= 1'b1;
        sweep_addr <= '0;
      end else if (sweeping) begin
        sweep_addr <= sweep_addr + 1'b1;
        if (32'(sweep_addr) == BEATS - 1) sweeping <= 1'b0;
      end
      if (accept) begin
        beat <= next_beat;
        if (32'(beat) == BEATS - 1) begin
          in_frame <= 1'b0;
          ending   <= 1'b1;
          stream_error <= !s_axis_tlast;
        end else begin
          in_frame <= 1'b1;
          stream_error <= s_axis_tlast;
        end
      end
      if (marker && ev_ready) ending <= 1'b0;
    end
  end
endmodule
