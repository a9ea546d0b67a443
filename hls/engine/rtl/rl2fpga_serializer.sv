// Serializer: takes N candidate items at once (a valid mask plus N payloads) and sends the
// valid ones one per cycle, lowest index first, on a valid/ready output. The producer may load
// a new set only when `can_load` is high (the current set is empty, or its last item leaves
// this cycle), which is how the producers stall while a set is being serialised.
module rl2fpga_serializer #(
    parameter int N  = 4,
    parameter int PW = 8
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
  logic [N-1:0]         mask;
  logic [N*PW-1:0]      payload;
  logic [N-1:0]         lowest;  // one-hot lowest set bit of mask

  assign lowest    = mask & (~mask + N'(1));
  assign out_valid = |mask;

  always_comb begin
    out_payload = '0;
    for (int i = 0; i < N; i++) begin
      if (lowest[i]) out_payload = payload[i*PW +: PW];
    end
  end

  assign can_load = (mask & ~(out_ready ? lowest : '0)) == '0;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      mask <= '0;
    end else if (load && can_load) begin
      mask    <= load_mask;
      payload <= load_payload;
    end else if (out_valid && out_ready) begin
      mask <= mask & ~lowest;
    end
  end
endmodule
