// rl2fpga sparse delta engine: shared widths of the event links between stages.
//
// An event is one transmitted delta: the coordinates (y, x, c) of the changed input of the
// consuming layer (channels-last; a 1-D vector is (0, 0, i)) and its signed value. A link also
// carries an end-of-frame marker (`last` with no payload) after the frame's final event.
package rl2fpga_pkg;
  localparam int YW = 8;   // row coordinate (feature maps up to 255 high)
  localparam int XW = 8;   // column coordinate
  localparam int CW = 16;  // channel / vector index
  localparam int VW = 18;  // signed delta (or output value): holds any (16+1)-bit difference
  localparam int EW = YW + XW + CW + VW;  // packed event payload {y, x, c, value}
endpackage
