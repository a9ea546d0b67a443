// Requantize one accumulator word (combinational): round half to even by SHIFT, saturate to the
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
    parameter int FBW        = 1
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
  localparam logic signed [63:0] QMIN = OUT_SIGNED ? -(64'sd1 <<< (OUT_BITS - 1)) : 64'sd0;
  localparam logic signed [63:0] QMAX = OUT_SIGNED ? (64'sd1 <<< (OUT_BITS - 1)) - 1 : (64'sd1 <<< OUT_BITS) - 1;

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

  always_comb begin
    logic signed [63:0] y, xh, d, mag;
    int f;
    logic [OYW-1:0] oy;
    logic [OXW-1:0] ox;
    logic [FBW-1:0] fb;
    {oy, ox, fb} = entry;
    f   = 32'(fb) * LANES + LANE;
    y   = requantize($signed(word[ACC_BITS-1:0]));
    xh  = {{(64 - XB){OUT_SIGNED && word[XB+ACC_BITS-1]}}, word[XB+ACC_BITS-1 -: XB]};
    d   = y - xh;
    mag = d < 0 ? -d : d;
    if (LAST) send = valid && f < N_OUT;
    else send = valid && f < N_OUT && mag > $signed({32'd0, threshold});
    payload  = {YW'(oy), XW'(ox), CW'(f), VW'(LAST ? y : d)};
    new_word = {(!LAST && send) ? XB'(y) : word[XB+ACC_BITS-1 -: XB], word[ACC_BITS-1:0]};
  end
endmodule
