// rl2fpga delta-update input stage for hls4ml (part of rl2fpga, hand-written; not generated).
//
// Every element keeps the value it last transmitted, x_hat, and transmits again only when
// |x - x_hat| > T (T in LSBs of the element's fixed-point format, strict comparison):
//
//     x_hat_i <- x_i   if |x_i - x_hat_i| > T,   else unchanged;      res_i = x_hat_i
//
// x_hat is static state kept from call to call (one time step per call) and starts at 0. The
// next layer computes W @ x_hat + b, which is what the golden model (rl2fpga/core/golden.py) defines.
//
// Episode reset: the top function has a port `bool rl2fpga_reset` (added by the writer hook in
// hls/delta_layer.py) that every stage takes: when it is true, the stage's x_hat is cleared to 0
// before this call's comparison, so the call is the first time step of an episode. On the
// VivadoAccelerator overlay it is the first word of the input stream (nonzero: reset).
//
// C simulation only (not synthesised): the compiled library exports
//   rl2fpga_delta_reset()                     the next call has rl2fpga_reset = true (the Python
//                                             bridge passes it to the top function's port)
//   rl2fpga_delta_set_threshold(stage, T)     override stage's T at run time (T < 0: compiled T)
//   rl2fpga_delta_threshold(stage)            the override in force (-1: compiled T)
// so one compiled model serves a whole threshold sweep over real episodes. In synthesised
// firmware T is the compiled constant and x_hat starts at 0 with the bitstream.
#ifndef RL2FPGA_DELTA_H_
#define RL2FPGA_DELTA_H_

#include "ap_fixed.h"
#include "ap_int.h"
#include "hls_stream.h"
#include "nnet_common.h"

namespace rl2fpga {

struct delta_config {
    static const unsigned n_in = 1;       // elements per call
    static const unsigned stage = 0;      // index of this delta stage in the network
    static const unsigned threshold = 0;  // T_int in LSBs of the element format
    typedef ap_int<8> raw_t;              // the element's bits as an integer (signedness kept)
    typedef ap_int<10> diff_t;            // wide enough for any difference of two raw_t
};

#ifndef __SYNTHESIS__
static const unsigned max_stages = 64;

struct delta_runtime {
    bool reset_pending;           // set by rl2fpga_delta_reset(), taken by the bridge
    long threshold[max_stages];   // < 0: use the compiled threshold
    delta_runtime() : reset_pending(false) {
        for (unsigned i = 0; i < max_stages; i++)
            threshold[i] = -1;
    }
};

inline delta_runtime &runtime() {
    static delta_runtime rt;
    return rt;
}

// The value of the top function's rl2fpga_reset port for this call (clears the request).
inline bool take_reset() {
    bool r = runtime().reset_pending;
    runtime().reset_pending = false;
    return r;
}
#endif

template <class CONFIG_T> long delta_threshold() {
#ifndef __SYNTHESIS__
    long t = runtime().threshold[CONFIG_T::stage % max_stages];
    if (t >= 0)
        return t;
#endif
    return CONFIG_T::threshold;
}

// One element: update x_hat in place when the change is significant.
template <class data_T, class state_T, typename CONFIG_T> inline void delta_element(const data_T &x, state_T &x_hat, long t) {
#pragma HLS INLINE
    typename CONFIG_T::raw_t a, b;
    a.range() = x.range();
    b.range() = x_hat.range();
    typename CONFIG_T::diff_t d = typename CONFIG_T::diff_t(a) - typename CONFIG_T::diff_t(b);
    if (d > t || d < -t)
        x_hat = x;
}

// io_parallel: arrays in, arrays out.
template <class data_T, class res_T, typename CONFIG_T>
void delta(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in], bool reset) {
    static res_T x_hat[CONFIG_T::n_in];
#pragma HLS ARRAY_PARTITION variable = x_hat complete
    const long t = delta_threshold<CONFIG_T>();
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
#pragma HLS UNROLL
        if (reset)
            x_hat[i] = 0;
        delta_element<data_T, res_T, CONFIG_T>(data[i], x_hat[i], t);
        res[i] = x_hat[i];
    }
}

// io_stream: packs of data_T::size elements (one pixel's channels) in, same packs out.
template <class data_T, class res_T, typename CONFIG_T>
void delta_stream(hls::stream<data_T> &data, hls::stream<res_T> &res, bool reset) {
    static_assert(data_T::size == res_T::size, "delta stage: input and output packs must match");
    static typename res_T::value_type x_hat[CONFIG_T::n_in];
#pragma HLS ARRAY_PARTITION variable = x_hat cyclic factor = data_T::size
    const long t = delta_threshold<CONFIG_T>();
    for (unsigned p = 0; p < CONFIG_T::n_in / data_T::size; p++) {
#pragma HLS PIPELINE
        data_T in = data.read();
        res_T out;
        PRAGMA_DATA_PACK(out)
        for (unsigned j = 0; j < data_T::size; j++) {
#pragma HLS UNROLL
            unsigned i = p * data_T::size + j;
            if (reset)
                x_hat[i] = 0;
            delta_element<typename data_T::value_type, typename res_T::value_type, CONFIG_T>(in[j], x_hat[i], t);
            out[j] = x_hat[i];
        }
        res.write(out);
    }
}

} // namespace rl2fpga

#ifndef __SYNTHESIS__
// This header is included once per project (through parameters.h), so these C-simulation hooks
// are defined in exactly one translation unit of the compiled library.
extern "C" {
void rl2fpga_delta_reset() { rl2fpga::runtime().reset_pending = true; }
bool rl2fpga_delta_take_reset() { return rl2fpga::take_reset(); }
void rl2fpga_delta_set_threshold(int stage, long t) { rl2fpga::runtime().threshold[stage % rl2fpga::max_stages] = t; }
long rl2fpga_delta_threshold(int stage) { return rl2fpga::runtime().threshold[stage % rl2fpga::max_stages]; }
}
#endif

#endif
