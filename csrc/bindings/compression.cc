// _core.compression: MindSpore DIFF_SPARSE_QUANT / QUANT kernels over numpy arrays, zero-copy.
#include <pybind11/numpy.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings/bind.h"
#include "common/errors.h"
#include "compression/decode.h"
#include "compression/quantize.h"
#include "compression/sparse_mask.h"

namespace mindfed::bindings {
namespace {

using F32 = py::array_t<float, py::array::c_style>;  // no forcecast: never a silent copy
using I8 = py::array_t<int8_t, py::array::c_style>;
using I32 = py::array_t<int32_t, py::array::c_style>;

size_t Length(int64_t d) {
  if (d < 0) throw std::invalid_argument("mask length must be >= 0, got " + std::to_string(d));
  return static_cast<size_t>(d);
}

void RequireSize(py::ssize_t got, py::ssize_t want, const std::string& what) {
  if (got != want) {
    throw std::invalid_argument(what + " has " + std::to_string(got) + " elements, expected " +
                                std::to_string(want));
  }
}

size_t KeptCount(int64_t d, float rate) { return compression::KeptCount(Length(d), rate); }

// The index vector moves into a heap owner that numpy frees: no copy.
I32 SparseIndices(int64_t d, float rate, int32_t seed) {
  const size_t n = Length(d);
  auto* owner = new std::vector<int32_t>();
  try {
    py::gil_scoped_release nogil;
    *owner = compression::KeptIndices(n, rate, seed);
  } catch (...) {
    delete owner;
    throw;
  }
  py::capsule free_owner(owner, [](void* p) { delete static_cast<std::vector<int32_t>*>(p); });
  return I32(static_cast<py::ssize_t>(owner->size()), owner->data(), free_owner);
}

float QuantScale(float min, float max) { return compression::QuantScale(min, max); }

py::tuple QuantizeInto(F32 x, I8 codes) {
  RequireSize(codes.size(), x.size(), "codes");
  int8_t* out = codes.mutable_data();  // ValueError if read-only
  const float* src = x.data();
  const auto n = static_cast<size_t>(x.size());
  compression::MinMax range{};
  {
    py::gil_scoped_release nogil;
    range = compression::Quantize(src, n, out);
  }
  return py::make_tuple(range.min, range.max);
}

void DequantizeInto(I8 codes, float min, float max, F32 out) {
  RequireSize(out.size(), codes.size(), "out");
  float* dst = out.mutable_data();
  const int8_t* src = codes.data();
  const auto n = static_cast<size_t>(codes.size());
  py::gil_scoped_release nogil;
  compression::Dequantize(src, n, {min, max}, dst);
}

void DecodeAccumulate(F32 acc, I8 codes, float min, float max, I32 kept, int64_t offset,
                      F32 latest, int64_t data_size) {
  RequireSize(latest.size(), acc.size(), "latest");
  if (codes.size() != kept.size()) {
    throw ProtocolError("compressed tensor has " + std::to_string(codes.size()) +
                        " values, the sparse mask keeps " + std::to_string(kept.size()));
  }
  if (data_size < 0) {
    throw std::invalid_argument("data_size must be >= 0, got " + std::to_string(data_size));
  }
  const compression::SparseTensor t{codes.data(), kept.data(), static_cast<size_t>(kept.size()),
                                    offset, {min, max}};
  const auto n = static_cast<size_t>(acc.size());
  float* dst = acc.mutable_data();
  const float* w = latest.data();
  compression::CheckRange(t);
  py::gil_scoped_release nogil;
  compression::CheckKept(t, n);
  compression::DecodeAccumulate(t, w, static_cast<float>(data_size), dst, n);
}

}  // namespace

void BindCompression(py::module_ m) {
  m.def("kept_count", &KeptCount, py::arg("d"), py::arg("rate"),
        "K = (int)((float)d * rate): how many of d coordinates the sparse mask keeps. "
        "ValueError unless 0 < rate <= 1 and 0 <= d < 2**31.");
  m.def("sparse_indices", &SparseIndices, py::arg("d"), py::arg("rate"), py::arg("seed"),
        "Ascending int32 positions kept by MindSpore's seeded sparse mask (seed = iteration). "
        "Same checks as kept_count. Releases the GIL.");
  m.def("quant_scale", &QuantScale, py::arg("min"), py::arg("max"),
        "(max - min) / 255 + 1e-10 in float32.");
  m.def("quantize_into", &QuantizeInto, py::arg("x").noconvert(), py::arg("codes").noconvert(),
        "codes = 8-bit min/max quantisation of float32 x (Java Math.round); returns (min, max). "
        "TypeError on a wrong dtype or strided view; ValueError on a size mismatch, read-only "
        "codes, a NaN/Inf in x or a range that overflows float32. Releases the GIL.");
  m.def("dequantize_into", &DequantizeInto, py::arg("codes").noconvert(), py::arg("min"),
        py::arg("max"), py::arg("out").noconvert(),
        "out = (codes + 128) * scale + min in float32. Releases the GIL.");
  m.def("decode_accumulate", &DecodeAccumulate, py::arg("acc").noconvert(),
        py::arg("codes").noconvert(), py::arg("min"), py::arg("max"), py::arg("kept").noconvert(),
        py::arg("offset"), py::arg("latest").noconvert(), py::arg("data_size"),
        "acc += decoded DIFF_SPARSE_QUANT tensor + data_size * latest, in place, no dense copy. "
        "kept: this tensor's slice of sparse_indices (global positions), offset: the tensor's "
        "first global position. ProtocolError if codes and kept differ in length or min/max "
        "are bad; ValueError on acc/latest size mismatch or kept outside the tensor. "
        "Releases the GIL.");
}

}  // namespace mindfed::bindings
