// Event-set queue of the frame-stack encoder (rl2fpga_stack_encoder): SETQ > 0 keeps the event
// sets of compared beats (the beat, the mask of its NE candidates, their deltas, and the row
// marker that follows them) in a FIFO of SETQ sets, so the stream goes on at a beat per cycle
// while the serializer sends a burst; the serializer loads the head when it can and no row
// marker is pending. SETQ = 0: the compared beat's set goes straight to the serializer.
module rl2fpga_set_queue
#(
    parameter int SETQ = 0,
    parameter int NE   = 32,  // candidate events per beat
    parameter int BW   = 8,   // beat index bits
    parameter int FW   = 16,  // flat element index bits
    parameter int DW   = 10,  // delta bits
    // derived; not to be overridden
    parameter int PW   = FW + rl2fpga_pkg::VW
) (
    input  logic                        clk,
    input  logic                        rst_n,
    input  logic                        s0_cmp,      // a beat is compared this cycle
    input  logic [BW-1:0]               s0_beat,
    input  logic [NE-1:0]               cmp_mask,
    input  logic [NE*PW-1:0]            cmp_payload, // {flat, value} per candidate
    input  logic                        beat_mark,   // a row marker follows this beat's events
    input  logic [rl2fpga_pkg::YW-1:0]  beat_y,
    input  logic                        ser_can_load,
    input  logic                        mark_pending,
    output logic                        ser_load,
    output logic [NE-1:0]               ld_mask,
    output logic [NE*PW-1:0]            ld_payload,
    output logic                        ld_mark,
    output logic [rl2fpga_pkg::YW-1:0]  ld_y,
    output logic                        sq_space,    // the queue takes one more set
    output logic                        sq_empty
);
  localparam int YW = rl2fpga_pkg::YW, VW = rl2fpga_pkg::VW;

  if (SETQ > 0) begin : g_setq
    localparam int SQW = BW + NE + NE * DW + 1 + YW;  // {beat, mask, deltas, mark, y}
    logic [NE*DW-1:0]            cmp_d;
    logic [SQW-1:0]              sq_head;
    logic [BW-1:0]               hd_beat;
    logic [$clog2(SETQ + 1)-1:0] sq_count;
    always_comb begin
      for (int i = 0; i < NE; i++) cmp_d[i*DW +: DW] = cmp_payload[i*PW +: DW];
    end
    rl2fpga_fifo #(.DEPTH(SETQ), .W(SQW)) u_q (
        .clk, .rst_n,
        .push     (s0_cmp && (|cmp_mask || beat_mark)),
        .push_data({s0_beat, cmp_mask, cmp_d, beat_mark, beat_y}),
        .pop      (ser_load),
        .head     (sq_head),
        .count    (sq_count)
    );
    assign {hd_beat, ld_mask} = sq_head[SQW-1 -: BW + NE];
    assign {ld_mark, ld_y}    = sq_head[YW:0];
    always_comb begin
      for (int i = 0; i < NE; i++) begin
        logic [DW-1:0] d;
        d = sq_head[YW + 1 + i*DW +: DW];
        ld_payload[i*PW +: PW] = {FW'(32'(hd_beat) * NE + i), VW'($signed(d))};
      end
    end
    assign sq_space = 32'(sq_count) < SETQ;
    assign sq_empty = sq_count == '0;
    assign ser_load = !sq_empty && ser_can_load && !mark_pending;
  end else begin : g_direct
    // verilator lint_off UNUSEDSIGNAL
    logic unused;
    assign unused = clk ^ rst_n ^ ser_can_load ^ mark_pending ^ (|s0_beat);
    // verilator lint_on UNUSEDSIGNAL
    assign sq_empty   = 1'b1;
    assign sq_space   = 1'b1;
    assign ser_load   = s0_cmp;
    assign ld_mask    = cmp_mask;
    assign ld_payload = cmp_payload;
    assign ld_mark    = beat_mark;
    assign ld_y       = beat_y;
  end
endmodule
