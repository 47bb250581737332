#include <pybind11/numpy.h>

#include <string>

#include "bench/triad.h"
#include "bindings/bind.h"

namespace mindfed::bindings {
namespace {

using F32 = py::array_t<float, py::array::c_style>;  // no forcecast: never a silent copy

double Triad(F32 a, F32 b, F32 c, double scalar, int repeats) {
  if (a.size() != b.size() || a.size() != c.size()) {
    throw std::invalid_argument("triad arrays differ in size: a has " + std::to_string(a.size()) +
                                ", b has " + std::to_string(b.size()) + ", c has " +
                                std::to_string(c.size()) + " elements");
  }
  float* pa = a.mutable_data();
  const float* pb = b.data();
  const float* pc = c.data();
  const auto n = static_cast<size_t>(a.size());
  py::gil_scoped_release nogil;
  return bench::TriadBestSeconds(pa, pb, pc, static_cast<float>(scalar), n, repeats);
}

}  // namespace

void BindBench(py::module_ m) {
  m.def("triad", &Triad, py::arg("a").noconvert(), py::arg("b").noconvert(),
        py::arg("c").noconvert(), py::arg("scalar"), py::arg("repeats"),
        "STREAM triad a = b + scalar * c over float32 arrays, run `repeats` times; returns the "
        "best time in seconds (STREAM counts 3 * a.nbytes per run). Releases the GIL.");
}

}  // namespace mindfed::bindings
