// Synchronous FIFO of DEPTH words of W bits (distributed RAM, registered pointers). The pointer
// and count widths follow DEPTH (any depth >= 2, not only powers of two). `count` is the number
// of stored words; pushing into a full FIFO or popping an empty one is the user's error (the
// users here check `count` first). A pop and a push may happen in the same cycle.
module rl2fpga_fifo #(
    parameter int DEPTH = 8,
    parameter int W     = 8
) (
    input  logic                       clk,
    input  logic                       rst_n,
    input  logic                       push,
    input  logic [W-1:0]               push_data,
    input  logic                       pop,
    output logic [W-1:0]               head,      // the oldest word (valid when count != 0)
    output logic [$clog2(DEPTH+1)-1:0] count
);
  localparam int PW = DEPTH > 1 ? $clog2(DEPTH) : 1;
  localparam int CW = $clog2(DEPTH + 1);

  logic [W-1:0]  mem[DEPTH];
  logic [PW-1:0] rp, wp;

  function automatic logic [PW-1:0] next(input logic [PW-1:0] p);
    next = 32'(p) == DEPTH - 1 ? '0 : p + 1'b1;
  endfunction

  assign head = mem[rp];

  always_ff @(posedge clk) begin
    if (push) mem[wp] <= push_data;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      rp    <= '0;
      wp    <= '0;
      count <= '0;
    end else begin
      if (push) wp <= next(wp);
      if (pop) rp <= next(rp);
      count <= count + (push ? CW'(1) : CW'(0)) - (pop ? CW'(1) : CW'(0));
    end
  end
endmodule
