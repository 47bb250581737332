// The extension module mindfed._core: only the list of bindings, one file each.
#include "bindings/bind.h"

namespace py = pybind11;
using namespace mindfed::bindings;

PYBIND11_MODULE(_core, m) {
  m.doc() = "mindfed C++ core. Import the Python faces (mindfed.aggregation, ...), not this.";
  BindErrors(m);
  m.attr("has_cuda") = py::bool_(MINDFED_HAVE_CUDA != 0);
  BindCrypto(m.def_submodule("crypto", "Randomness and (later) key agreement, KDF, masks, Shamir."));
  BindAgg(m.def_submodule("agg", "In-place weighted sums of float32 arrays."));
  BindCompression(m.def_submodule("compression", "MindSpore DIFF_SPARSE_QUANT/QUANT kernels."));
  BindBench(m.def_submodule("bench", "Probes that benchmarks compare against."));
  BindNet(m.def_submodule("net", "Node-to-node TCP transport: framed messages, own I/O thread."));
}
