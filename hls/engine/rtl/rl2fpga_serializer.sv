// Serializer: takes N candidate items at once (a valid mask plus N payloads) and sends the
// valid ones one per cycle, lowest index first, on a valid/ready output. The producer may load
// a new set only when `can_load` is high (the current set is empty, or its last item leaves
// this cycle), which is how the producers stall while a set is being serialised.
// PASS = 1: a set loaded while the serializer is empty offers its first item in the cycle it is
// loaded (combinationally from load_mask / load_payload), the rest from the register after.
module rl2fpga_serializer #(
    parameter int N    = 4,
    parameter int PW   = 8,
    parameter bit PASS = 0
) (
    input  logic                 clk,
    input  logic                 rst_n,
    // load side
    output logic                 can_load,
    input  logic                 load,
    input  logic [N-1:0]         load_mask,
    input  logic [N*PW-1:0]      load_payload,  // item i at [i*PW +: PW]
    // output side
    output logic                 out_valid,
    input  logic                 out_ready,
    output logic [PW-1:0]        out_payload
);
  logic [N-1:0]         mask, eff_mask;
  logic [N*PW-1:0]      payload, eff_payload;
  logic [N-1:0]         lowest, lowest_held;  // one-hot lowest set bit of eff_mask / mask
  logic                 pass;                 // the set being loaded is offered at once

  assign pass        = PASS && load && mask == '0;
  assign eff_mask    = pass ? load_mask : mask;
  assign eff_payload = pass ? load_payload : payload;
  assign lowest      = eff_mask & (~eff_mask + N'(1));
  assign lowest_held = mask & (~mask + N'(1));
  assign out_valid   = |eff_mask;

  always_comb begin
    out_payload = '0;
    for (int i = 0; i < N; i++) begin
      if (lowest[i]) out_payload = eff_payload[i*PW +: PW];
    end
  end

  assign can_load = (mask & ~(out_ready ? lowest_held : '0)) == '0;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      mask <= '0;
    end else if (load && can_load) begin
      mask    <= pass && out_ready ? load_mask & ~lowest : load_mask;
      payload <= load_payload;
    end else if (out_valid && out_ready) begin
      mask <= mask & ~lowest;
    end
  end
endmodule
