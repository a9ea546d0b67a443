// Requantize one accumulator word (combinational): round half to even by SHIFT (or, with
// per-output-channel weight scales, SHIFT_BITS > 0, by the channel's own shift read from the
// SHIFT_FILE image: one row per accumulator word fb, LANES fields of SHIFT_BITS), saturate to the
// output format, ReLU; then the delta against the x_hat kept beside the accumulator decides
// whether the output is sent (|y - x_hat| > threshold; the last layer sends every output, its
// value instead of a delta). Returns the word to write back with x_hat updated when sent.
module rl2fpga_requant
#(
    parameter int LANE       = 0,
    parameter int LANES      = 4,
    parameter int N_OUT      = 8,
    parameter int ACC_BITS   = 24,
    parameter int OUT_BITS   = 8,
    parameter bit OUT_SIGNED = 0,
    parameter int SHIFT      = 5,
    parameter bit RELU       = 1,
    parameter bit LAST       = 0,
    parameter int XB         = 8,   // x_hat bits kept per accumulator
    parameter int OYW        = 1,
    parameter int OXW        = 1,
    parameter int FBW        = 1,
    parameter int SHIFT_BITS = 0,   // 0: one SHIFT for the layer; else per-channel shifts
    parameter int FB_N       = 1,   // rows of the shift image (accumulator words per position)
    parameter SHIFT_FILE     = ""
) (
    input  logic                   valid,
    input  logic [XB+ACC_BITS-1:0] word,       // {x_hat, acc}
    input  logic [OYW+OXW+FBW-1:0] entry,      // {oy, ox, fb} of the word
    input  logic [31:0]            threshold,  // T_int of the next layer's input
    output logic                   send,
    output logic [rl2fpga_pkg::EW-1:0]          payload,
    output logic [XB+ACC_BITS-1:0] new_word
);
  // event link widths (rl2fpga_pkg)
  localparam int YW = rl2fpga_pkg::YW, XW = rl2fpga_pkg::XW, CW = rl2fpga_pkg::CW, VW = rl2fpga_pkg::VW;
  localparam int SB = SHIFT_BITS > 0 ? SHIFT_BITS : 1;
  // arithmetic width: holds the accumulator, q << shift for the largest shift, the output
  // range and a difference of two outputs (the values a 64-bit version would compute)
  localparam int SHMAX = SHIFT_BITS > 0 ? (1 << SHIFT_BITS) - 1 : SHIFT;
  localparam int RW = (ACC_BITS > SHMAX ? (ACC_BITS > OUT_BITS ? ACC_BITS : OUT_BITS)
                                        : (SHMAX > OUT_BITS ? SHMAX : OUT_BITS)) + 3;
  localparam logic signed [RW-1:0] QMIN = OUT_SIGNED ? -(RW'(1) <<< (OUT_BITS - 1)) : '0;
  localparam logic signed [RW-1:0] QMAX = OUT_SIGNED ? (RW'(1) <<< (OUT_BITS - 1)) - 1 : (RW'(1) <<< OUT_BITS) - 1;

  // per-channel shifts: row fb holds the shifts of outputs fb * LANES + 0 .. LANES - 1
  logic [SB-1:0] ch_shift;
  if (SHIFT_BITS > 0) begin : g_shift_rom
    logic [FBW-1:0]      fb_of_entry;
    logic [LANES*SB-1:0] shift_rom[FB_N];
    assign fb_of_entry = entry[FBW-1:0];
    initial $readmemh(SHIFT_FILE, shift_rom);
    assign ch_shift = shift_rom[fb_of_entry][LANE*SB +: SB];
  end else begin : g_no_shift_rom
    assign ch_shift = '0;
  end

  function automatic logic signed [RW-1:0] requantize(input logic signed [ACC_BITS-1:0] acc,
                                                    input logic [7:0] sh);
    logic signed [RW-1:0] a, q, rem, half, y;
    a    = {{(RW - ACC_BITS){acc[ACC_BITS-1]}}, acc};
    q    = a >>> sh;
    rem  = a - (q <<< sh);
    half = sh > 0 ? (RW'(1) <<< (sh - 1)) : '0;
    y    = q + ((sh > 0 && (rem > half || (rem == half && q[0]))) ? RW'(1) : RW'(0));
    if (y > QMAX) y = QMAX;
    if (y < QMIN) y = QMIN;
    if (RELU && y < 0) y = 0;
    requantize = y;
  endfunction

  always_comb begin
    logic signed [RW-1:0] y, xh, d, mag;
    // the value sent: it fits the event's VW bits (the generator checks the formats)
    // verilator lint_off UNUSEDSIGNAL
    logic signed [RW-1:0] v;
    // verilator lint_on UNUSEDSIGNAL
    int f;
    logic [7:0] sh;
    logic [OYW-1:0] oy;
    logic [OXW-1:0] ox;
    logic [FBW-1:0] fb;
    {oy, ox, fb} = entry;
    f   = 32'(fb) * LANES + LANE;
    sh  = SHIFT_BITS > 0 ? 8'(ch_shift) : 8'(SHIFT);
    y   = requantize($signed(word[ACC_BITS-1:0]), sh);
    xh  = {{(RW - XB){OUT_SIGNED && word[XB+ACC_BITS-1]}}, word[XB+ACC_BITS-1 -: XB]};
    d   = y - xh;
    mag = d < 0 ? -d : d;
    if (LAST) send = valid && f < N_OUT;
    else send = valid && f < N_OUT && 64'($unsigned(mag)) > 64'(threshold);  // mag >= 0
    v        = LAST ? y : d;
    payload  = {YW'(oy), XW'(ox), CW'(f), VW'(v)};
    new_word = {(!LAST && send) ? XB'(y) : word[XB+ACC_BITS-1 -: XB], word[ACC_BITS-1:0]};
  end
endmodule
