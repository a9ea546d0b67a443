"""The sparse delta engine's AXI4-Lite register map and stream formats: one table shared by the
RTL generator, the PYNQ driver, the simulated device and the testbenches.

All registers are 32 bits, byte addresses. Counters describe the *last finished frame* unless
named TOTAL. Writes to read-only registers are ignored.

Input stream (AXI4-Stream, ``8 * input_bytes_per_beat`` bits): the frame's elements in C order
of the network input (h, w, c for images), each element in ``elem_bytes`` bytes little-endian
(1 byte for inputs of <= 8 bits, 2 for <= 16 bits, two's complement when signed); elements
packed densely across beats; TLAST on the frame's last beat; unused bytes of the last beat are
zero. Frame-stack engines (INFO bit 24; input (h, w, K) = the K newest frames, oldest first)
take only the newest frame: its h * w pixels, one byte each, padded to whole beats; after a
state reset or a CTRL_FULL_FRAME write the next frame is the whole stack as K such planes,
oldest first (rl2fpga_stack_encoder.sv). Output stream (32-bit beats): the n_out output integers sign-extended, then the greedy
action; TLAST on the action beat.

Top-level ports of the engine (``rl2fpga_engine_top``, generated per model), Xilinx naming so
Vivado infers the interfaces: ``clk``, ``rst_n`` (active-low, synchronous);
AXI4-Lite slave ``s_axil_{awaddr,awvalid,awready,wdata,wstrb,wvalid,wready,bresp,bvalid,bready,
araddr,arvalid,arready,rdata,rresp,rvalid,rready}`` (ADDR_WIDTH-bit addresses, 32-bit data);
AXI4-Stream slave ``s_axis_{tdata,tvalid,tready,tlast}``; AXI4-Stream master
``m_axis_{tdata,tvalid,tready,tlast}`` (32-bit).
"""

from __future__ import annotations

ENGINE_ID = 0x524C3246  # "RL2F"

CTRL = 0x00  # W: bit0 reset state (x_hat, accumulators -> bias) self-clearing; bit1 reset counters
CTRL_RESET_STATE = 0x1
CTRL_RESET_COUNTERS = 0x2
CTRL_FULL_FRAME = 0x4  # frame-stack engines: the next frame is a full stack (K planes)
STATUS = 0x04  # R: bit0 busy, bit1 frame done since last read of STATUS, bit2 stream error (TLAST misplaced)
STATUS_BUSY = 0x1
STATUS_DONE = 0x2
STATUS_ERROR = 0x4
ID = 0x08  # R: ENGINE_ID
INFO = 0x0C  # R: bits 7:0 layers, 15:8 lanes, 23:16 input bytes per beat, bit 24 frame stack
INFO_FRAME_STACK = 1 << 24
FRAMES = 0x10  # R: frames finished since counter reset
CYCLES = 0x14  # R: cycles of the last frame, first input beat accepted -> action beat sent
TOTAL_CYCLES_LO = 0x18  # R
TOTAL_CYCLES_HI = 0x1C  # R
ACTION = 0x20  # R: greedy action of the last frame
THRESHOLD_BASE = 0x40  # RW: THRESHOLD[k] at 0x40 + 4k, k < MAX_LAYERS (T_int, input LSBs of layer k)
EVENTS_BASE = 0x80  # R: EVENTS[k] at 0x80 + 8k: changed inputs of layer k in the last frame
MACS_BASE = 0x84  # R: MACS[k] at 0x84 + 8k: multiply-accumulates of layer k in the last frame
MAX_LAYERS = 16
ADDR_WIDTH = 8


def threshold_reg(k: int) -> int:
    return THRESHOLD_BASE + 4 * k


def events_reg(k: int) -> int:
    return EVENTS_BASE + 8 * k


def macs_reg(k: int) -> int:
    return MACS_BASE + 8 * k


def elem_bytes(bits: int) -> int:
    if bits <= 8:
        return 1
    if bits <= 16:
        return 2
    raise ValueError(f"input elements of {bits} bits are not supported (<= 16)")
