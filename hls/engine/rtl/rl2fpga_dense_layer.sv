// Short-path event-driven layer for small dense layers stored in the dense format (the
// generator picks it: LayerPlan.module). Same ports, parameters, memory images, arithmetic and
// counters as rl2fpga_layer; what differs is where the state lives, which removes the pipeline
// fill and drain of every layer:
//   * the accumulators and x_hat are registers (FB words per lane), the weights a ROM read in
//     the cycle it is used (LUT memory), so an event's MAC is one cycle: an event taken at
//     clock edge k is multiplied and accumulated in cycle k + 1 (word fb of every lane per
//     cycle, FB cycles per event; the next event is taken in the last of them);
//   * the requantize phase starts in the cycle of the last MAC (a requantizer of the word that
//     MAC is on reads the accumulator plus this cycle's products, the value written at the
//     clock edge) and always compares every accumulator word (a clean word requantizes to a
//     value that is not sent: the same result as the dirty lists, so a threshold write needs
//     no pass of its own): a step requantizes every word (RQ_ALL) or one word, fb, of every
//     lane in place and its changed outputs go out on the link straight from the
//     requantizers, in output order; x_hat is written back once the step's last output has
//     left; then the end marker;
//   * a state reset loads every accumulator with its bias and clears x_hat in one cycle;
//   * two events per cycle: the link carries a second event beside the first (in_valid2 /
//     out_valid2, taken with the first when both ends can: ready2). A layer of one word per
//     lane whose outputs fill at most half the lanes (PAIR) takes two events per cycle, the
//     second on the multipliers of the idle lanes (2 x N_OUT <= LANES products per cycle); a
//     layer offers the two lowest changed outputs of a step at once.
module rl2fpga_dense_layer
#(
    // verilator lint_off UNUSEDPARAM
    // (rl2fpga_layer's parameter list, so the top level instantiates either module alike)
    parameter int    KIND       = 0,
    parameter int    IN_W       = 1,
    parameter int    IN_C       = 4,
    parameter int    KH         = 1,
    parameter int    KW         = 1,
    parameter int    SH         = 1,
    parameter int    SW         = 1,
    parameter int    OUT_H      = 1,
    parameter int    OUT_W      = 1,
    parameter int    N_OUT      = 8,
    parameter int    LANES      = 4,
    parameter int    W_BITS     = 8,
    parameter int    ACC_BITS   = 24,
    parameter int    OUT_BITS   = 8,
    parameter bit    OUT_SIGNED = 0,
    parameter int    SHIFT      = 5,
    parameter int    SHIFT_BITS = 0,
    parameter bit    RELU       = 1,
    parameter bit    LAST       = 0,
    parameter int    TAB_DEPTH  = 4,
    parameter int    PTR_BITS   = 8,
    parameter int    LEN_BITS   = 4,
    parameter int    WMEM_DEPTH = 16,
    parameter int    FB_BITS    = 1,
    parameter int    TAP_BITS   = 0,
    parameter int    FORMAT     = 2,
    parameter int    ENTRY_BITS = W_BITS,
    parameter int    RUN_BITS   = 0,
    parameter int    LIST_LEN   = 1,
    parameter int    B_BITS     = ACC_BITS,
    parameter bit    RQ_ALL     = 0,  // (short path only) every word requantized in one step
    parameter WMEM_FILE  = "",
    parameter TAB_FILE   = "",
    parameter BIAS_FILE  = "",
    parameter SHIFT_FILE = ""
    // verilator lint_on UNUSEDPARAM
) (
    input  logic          clk,
    input  logic          rst_n,
    input  logic          state_reset,
    // verilator lint_off UNUSEDSIGNAL
    input  logic          force_all_dirty,  // every word is compared every frame anyway
    // verilator lint_on UNUSEDSIGNAL
    input  logic [31:0]   threshold,
    output logic          busy,
    input  logic          in_valid,
    output logic          in_ready,
    input  logic          in_last,
    input  logic [rl2fpga_pkg::EW-1:0] in_payload,
    output logic          out_valid,
    input  logic          out_ready,
    output logic          out_last,
    output logic [rl2fpga_pkg::EW-1:0] out_payload,
    // second event of the cycle (after the first; never the marker)
    input  logic          in_valid2,
    output logic          in_ready2,
    // verilator lint_off UNUSEDSIGNAL
    input  logic [rl2fpga_pkg::EW-1:0] in_payload2,  // y/x unused; all unused without PAIR
    // verilator lint_on UNUSEDSIGNAL
    output logic          out_valid2,
    input  logic          out_ready2,
    output logic [rl2fpga_pkg::EW-1:0] out_payload2,
    output logic [31:0]   last_events,
    output logic [31:0]   last_macs,
    output logic [31:0]   last_pad
);
  localparam int YW = rl2fpga_pkg::YW, XW = rl2fpga_pkg::XW, CW = rl2fpga_pkg::CW;
  localparam int VW = rl2fpga_pkg::VW, EW = rl2fpga_pkg::EW;
  localparam int FB  = (N_OUT + LANES - 1) / LANES;  // accumulator words per lane
  localparam int XB  = LAST ? 1 : OUT_BITS;          // x_hat bits kept per accumulator
  localparam int NIN = TAB_DEPTH;                    // input positions (one list each)
  localparam int TW  = NIN > 1 ? $clog2(NIN) : 1;
  localparam int WAW = WMEM_DEPTH > 1 ? $clog2(WMEM_DEPTH) : 1;
  localparam bit PAIR = FB == 1 && 2 * N_OUT <= LANES;  // two events per cycle in
  // a requantize step takes RQW words of every lane: all FB words at once (RQ_ALL: one
  // requantizer per accumulator; the generator sets it before a layer that takes two events
  // per cycle, rq_all_words), else one word per step
  localparam int RQW = RQ_ALL ? FB : 1;
  localparam int V = RQW * LANES;  // requantizer j: lane j % LANES of word rq_fb + j / LANES

  if (KIND != 0 || FORMAT != 2 || OUT_H != 1 || OUT_W != 1 || LIST_LEN != FB || WMEM_DEPTH != NIN * FB
      || FB_BITS != (FB > 1 ? $clog2(FB) : 1) || B_BITS < 1 || B_BITS > ACC_BITS) begin : g_bad
    $error("rl2fpga_dense_layer: only a dense layer in the dense format (LIST_LEN = FB, WMEM_DEPTH = inputs x FB); regenerate the engine");
  end

  rl2fpga_pkg::phase_t phase;  // S_MAC or S_RQ (a state reset takes one cycle of S_MAC)
  logic                cur_valid, cur2_valid, marker_seen, fin, issue, issue2;
  logic [TW-1:0]       cur_t;
  logic [FB_BITS-1:0]  cur_fb, rq_fb;
  logic [VW-1:0]       cur_value;
  // verilator lint_off UNUSEDSIGNAL
  logic [TW-1:0]       cur2_t;      // the second event (PAIR only)
  logic [VW-1:0]       cur2_value;
  // verilator lint_on UNUSEDSIGNAL
  logic [LANES-1:0]    lane_mac, lane_mac2;
  logic [V-1:0]        send, sent, avail, lowest, second, gone;  // in output order
  logic [V*EW-1:0]     payload;
  logic [31:0]         word_macs, idle_lanes, run_events, run_macs, run_pad;
  logic                cur_end, rq_word_done, rq_end;

  logic [LANES*B_BITS-1:0] bias_rom[FB];
  initial $readmemh(BIAS_FILE, bias_rom);

  // ---------------------------------------------------------------- events in
  // the list (input index) of an event: (y * IN_W + x) * IN_C + c
  // verilator lint_off UNUSEDSIGNAL
  function automatic logic [TW-1:0] list_of(input logic [EW-1:0] e);
    list_of = TW'((32'(e[EW-1 -: YW]) * IN_W + 32'(e[EW-YW-1 -: XW])) * IN_C + 32'(e[VW+CW-1 -: CW]));
  endfunction
  // verilator lint_on UNUSEDSIGNAL
  assign cur_end  = 32'(cur_fb) == FB - 1;
  assign in_ready = phase == rl2fpga_pkg::S_MAC && !marker_seen && (!cur_valid || cur_end);
  assign issue    = in_valid && in_ready;
  assign in_ready2 = PAIR;
  assign issue2   = issue && !in_last && in_valid2 && in_ready2;
  // the frame's MACs are done after this cycle: the marker is (or was) taken and no event waits
  assign fin      = (marker_seen || (issue && in_last)) && (!cur_valid || cur_end);
  // requantizing: the phase, or word 0 already in the cycle the MACs finish (its value then is
  // the accumulator plus the products of that cycle's MAC when it is on the same word: rq_acc)
  logic rq_on;
  assign rq_on    = phase == rl2fpga_pkg::S_RQ || fin;
  assign busy     = phase != rl2fpga_pkg::S_MAC || cur_valid || marker_seen;

  // ---------------------------------------------------------------- lanes
  for (genvar l = 0; l < LANES; l++) begin : g_lane
    logic [ENTRY_BITS-1:0] wmem[WMEM_DEPTH];
    initial $readmemh({WMEM_FILE, 8'(97 + l / 26), 8'(97 + l % 26), ".mem"}, wmem);
    logic [ACC_BITS-1:0] acc[FB];
    logic [XB-1:0]       xhat[FB];
    logic [W_BITS-1:0]   w, w2;
    // verilator lint_off UNUSEDSIGNAL
    logic signed [W_BITS+VW-1:0] prod, prod2;  // kept modulo 2^ACC_BITS, as rl2fpga_lane
    // verilator lint_on UNUSEDSIGNAL
    logic [ACC_BITS-1:0] mac_sum;
    logic [XB-1:0]       new_x[RQW];  // x_hat of the step's words after it
    assign w            = W_BITS'(wmem[WAW'(32'(cur_t) * FB + 32'(cur_fb))]);
    assign prod         = $signed(w) * $signed(cur_value);
    assign lane_mac[l]  = cur_valid && w != '0;  // a zero weight (padding output included) is no MAC
    if (PAIR) begin : g_pair  // FB = 1: the second event's list is its input index
      assign w2 = W_BITS'(wmem[WAW'(cur2_t)]);
    end else begin : g_single
      assign w2 = '0;
    end
    assign prod2        = $signed(w2) * $signed(cur2_value);
    assign lane_mac2[l] = cur2_valid && w2 != '0;
    assign mac_sum      = (lane_mac[l] ? ACC_BITS'(prod) : '0) + (lane_mac2[l] ? ACC_BITS'(prod2) : '0);

    for (genvar k = 0; k < RQW; k++) begin : g_rq
      localparam int J = k * LANES + l;
      logic [FB_BITS-1:0]  fb;
      logic [ACC_BITS-1:0] rq_acc;
      // verilator lint_off UNUSEDSIGNAL
      logic [XB+ACC_BITS-1:0] new_word;  // only its x_hat is written back
      // verilator lint_on UNUSEDSIGNAL
      assign fb     = rq_fb + FB_BITS'(k);
      // the word requantized, with this cycle's MAC when that MAC is on it (the last MAC)
      assign rq_acc = acc[fb] + (cur_fb == fb ? mac_sum : '0);
      rl2fpga_requant #(
          .LANE(l), .LANES(LANES), .N_OUT(N_OUT), .ACC_BITS(ACC_BITS), .OUT_BITS(OUT_BITS),
          .OUT_SIGNED(OUT_SIGNED), .SHIFT(SHIFT), .RELU(RELU), .LAST(LAST), .XB(XB), .OYW(1),
          .OXW(1), .FBW(FB_BITS), .SHIFT_BITS(SHIFT_BITS), .FB_N(FB), .SHIFT_FILE(SHIFT_FILE)
      ) u_rq (
          .valid(rq_on), .word({xhat[fb], rq_acc}), .entry({2'b00, fb}),
          .threshold, .send(send[J]), .payload(payload[J*EW +: EW]), .new_word
      );
      assign new_x[k] = new_word[XB+ACC_BITS-1 -: XB];
    end

    always_ff @(posedge clk) begin
      if (phase == rl2fpga_pkg::S_MAC && state_reset && !busy) begin
        for (int fb = 0; fb < FB; fb++) begin
          acc[fb]  <= ACC_BITS'($signed(bias_rom[fb][l*B_BITS +: B_BITS]));
          xhat[fb] <= '0;
        end
      end else if (lane_mac[l] || lane_mac2[l]) begin
        acc[cur_fb] <= acc[cur_fb] + mac_sum;
      end
      if (rq_word_done) for (int k = 0; k < RQW; k++) xhat[rq_fb + FB_BITS'(k)] <= new_x[k];
    end
  end

  always_comb begin
    word_macs = '0;
    for (int l = 0; l < LANES; l++) word_macs = word_macs + 32'(lane_mac[l]) + 32'(lane_mac2[l]);
    idle_lanes = |lane_mac ? 32'(LANES) - word_macs : 32'd0;
  end

  // ---------------------------------------------------------------- events out
  // the step's changed outputs not yet sent leave lowest first; the step is done (x_hat
  // written back) in the cycle its last output leaves, or at once when it has none; the last
  // step keeps its sent mask, so the cycle after it the marker goes out
  assign avail        = send & ~sent;
  assign lowest       = avail & (~avail + V'(1));
  assign second       = (avail & ~lowest) & (~(avail & ~lowest) + V'(1));
  assign out_valid2   = rq_on && second != '0;
  assign gone         = lowest | (out_valid2 && out_ready2 ? second : '0);  // leave if out_ready
  assign rq_end       = 32'(rq_fb) == FB - RQW;
  assign rq_word_done = rq_on && (avail == '0 ? !rq_end : out_ready && avail == gone);
  logic rq_next;
  assign rq_next      = rq_word_done && !rq_end;
  assign out_valid    = rq_on && (avail != '0 || rq_end);
  assign out_last     = avail == '0;
  always_comb begin
    out_payload = '0;
    out_payload2 = '0;
    for (int j = 0; j < V; j++) begin
      if (lowest[j]) out_payload = payload[j*EW +: EW];
      if (second[j]) out_payload2 = payload[j*EW +: EW];
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      phase       <= rl2fpga_pkg::S_MAC;
      cur_valid   <= 1'b0;
      cur2_valid  <= 1'b0;
      marker_seen <= 1'b0;
      rq_fb       <= '0;
      sent        <= '0;
      run_events  <= '0;
      run_macs    <= '0;
      run_pad     <= '0;
      last_events <= '0;
      last_macs   <= '0;
      last_pad    <= '0;
    end else begin
      if (phase == rl2fpga_pkg::S_MAC) begin
        if (cur_valid) cur_fb <= cur_fb + 1'b1;
        if (cur_valid && cur_end) cur_valid <= 1'b0;
        cur2_valid <= issue2;
        if (issue && !in_last) begin
          cur_valid  <= 1'b1;
          cur_t      <= list_of(in_payload);
          cur_value  <= in_payload[VW-1:0];
          cur_fb     <= '0;
          run_events <= run_events + 1 + 32'(issue2);
        end
        if (issue2) begin
          cur2_t     <= list_of(in_payload2);
          cur2_value <= in_payload2[VW-1:0];
        end
        if (issue && in_last) marker_seen <= 1'b1;
        run_macs <= run_macs + word_macs;
        run_pad  <= run_pad + idle_lanes;
        if (fin) begin
          last_events <= run_events;
          last_macs   <= run_macs + word_macs;
          last_pad    <= run_pad + idle_lanes;
          run_events  <= '0;
          run_macs    <= '0;
          run_pad     <= '0;
          marker_seen <= 1'b0;
          phase       <= rl2fpga_pkg::S_RQ;
        end
      end
      // requantize (rq_fb and sent are 0 outside it)
      if (rq_next) begin
        rq_fb <= rq_fb + 1'b1;
        sent  <= '0;
      end else if (out_valid && out_ready && avail != '0) begin
        sent <= sent | gone;
      end
      if (out_valid && out_ready && out_last) begin  // the marker leaves
        phase <= rl2fpga_pkg::S_MAC;
        rq_fb <= '0;
        sent  <= '0;
      end
    end
  end
endmodule
