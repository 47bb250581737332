// _core.agg: in-place weighted sums over float32 numpy arrays, zero-copy in both directions.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "agg/finite.h"
#include "agg/weighted_sum.h"
#include "bindings/bind.h"

namespace mindfed::bindings {
namespace {

using F32 = py::array_t<float, py::array::c_style>;  // no forcecast: never a silent copy

void RequireSameSize(const F32& acc, const F32& other, const std::string& what) {
  if (acc.size() != other.size()) {
    throw std::invalid_argument(what + " has " + std::to_string(other.size()) +
                                " elements, acc has " + std::to_string(acc.size()));
  }
}

// Sources are read through .data(): read-only views over bytes (np.frombuffer) are accepted,
// at any byte alignment (the kernels load through memcpy).
void Accumulate(F32 acc, F32 update, double weight) {
  RequireSameSize(acc, update, "update");
  float* dst = acc.mutable_data();  // ValueError if acc is read-only
  const float* src = update.data();
  const auto n = static_cast<size_t>(acc.size());
  py::gil_scoped_release nogil;  // below this line: no py:: objects
  agg::Axpy(static_cast<float>(weight), src, dst, n);
}

void AccumulateGroup(F32 acc, const py::sequence& updates, const std::vector<double>& weights) {
  const auto k = static_cast<size_t>(py::len(updates));
  if (k != weights.size()) {
    throw std::invalid_argument(std::to_string(k) + " updates but " +
                                std::to_string(weights.size()) + " weights");
  }
  std::vector<F32> held;  // keeps every source alive while the GIL is released
  held.reserve(k);
  for (size_t j = 0; j < k; ++j) {
    py::object item = updates[j];
    if (!F32::check_(item)) {
      throw py::type_error("updates[" + std::to_string(j) +
                           "] must be a C-contiguous float32 numpy array, got " +
                           std::string(py::str(py::type::of(item).attr("__name__"))));
    }
    held.push_back(py::reinterpret_borrow<F32>(item));
    RequireSameSize(acc, held.back(), "updates[" + std::to_string(j) + "]");
  }
  std::vector<const float*> srcs(k);
  std::vector<float> w(k);
  for (size_t j = 0; j < k; ++j) {
    srcs[j] = held[j].data();
    w[j] = static_cast<float>(weights[j]);
  }
  float* dst = acc.mutable_data();
  const auto n = static_cast<size_t>(acc.size());
  {
    py::gil_scoped_release nogil;
    agg::AxpyGroup(w.data(), srcs.data(), k, dst, n);
  }
}

void ScaleInto(F32 src, double factor, F32 out) {
  RequireSameSize(out, src, "src");
  float* dst = out.mutable_data();
  const float* from = src.data();
  const auto n = static_cast<size_t>(out.size());
  py::gil_scoped_release nogil;
  agg::ScaleInto(from, static_cast<float>(factor), dst, n);
}

bool AllFinite(F32 src) {
  const float* from = src.data();
  const auto n = static_cast<size_t>(src.size());
  py::gil_scoped_release nogil;
  return agg::AllFinite(from, n);
}

}  // namespace

void BindAgg(py::module_ m) {
  m.def("accumulate", &Accumulate, py::arg("acc").noconvert(), py::arg("update").noconvert(),
        py::arg("weight"),
        "acc += weight * update, in place. Both C-contiguous float32 of equal size (any shape); "
        "update may be read-only and unaligned. TypeError on a wrong dtype, strided view or "
        "list; ValueError on a size mismatch or read-only acc. Releases the GIL.");
  m.def("accumulate_group", &AccumulateGroup, py::arg("acc").noconvert(), py::arg("updates"),
        py::arg("weights"),
        "acc += sum_j weights[j] * updates[j] in one pass over acc (cache-blocked), in place. "
        "Same array rules as accumulate for acc and every update; ValueError if the counts of "
        "updates and weights differ. Releases the GIL.");
  m.def("scale_into", &ScaleInto, py::arg("src").noconvert(), py::arg("factor"),
        py::arg("out").noconvert(),
        "out = factor * src (src is out is allowed). Same array rules as accumulate. "
        "Releases the GIL.");
  m.def("all_finite", &AllFinite, py::arg("src").noconvert(),
        "True when no element of src is NaN or +-inf (one pass, no temporary array; an empty "
        "array is True). src: C-contiguous float32, may be read-only and unaligned. "
        "Releases the GIL.");
}

}  // namespace mindfed::bindings
