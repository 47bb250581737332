#include <cstdint>
#include <vector>

#include "bindings/bind.h"
#include "crypto/random.h"

namespace mindfed::bindings {
namespace {

py::bytes RandomBytes(size_t n) {
  std::vector<uint8_t> out;
  {
    py::gil_scoped_release nogil;
    out = crypto::RandomBytes(n);
  }
  return py::bytes(reinterpret_cast<const char*>(out.data()), out.size());
}

}  // namespace

void BindCrypto(py::module_ m) {
  m.def("random_bytes", &RandomBytes, py::arg("n"),
        "n bytes from OpenSSL's CSPRNG (RAND_bytes). Raises CryptoError if it fails.");
}

}  // namespace mindfed::bindings
