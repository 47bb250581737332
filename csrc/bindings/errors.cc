// Maps the C++ exception types of common/errors.h onto mindfed.errors, in this one place.
#include <stdexcept>
#include <string>

#include "bindings/bind.h"
#include "common/errors.h"

namespace mindfed::bindings {
namespace {

// Throws the C++ exception named by kind, so tests can check the translation end to end.
[[noreturn]] void RaiseForTest(const std::string& kind) {
  if (kind == "protocol") throw ProtocolError("test protocol error");
  if (kind == "crypto") throw CryptoError("test crypto error");
  if (kind == "net") throw NetError("test net error");
  if (kind == "base") throw Error("test base error");
  throw std::invalid_argument("unknown kind '" + kind + "': protocol, crypto, net or base");
}

}  // namespace

void BindErrors(py::module_ m) {
  PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<py::object> errors;
  errors.call_once_and_store_result([] { return py::module_::import("mindfed.errors"); });
  py::register_local_exception_translator([](std::exception_ptr p) {
    const py::object& mod = errors.get_stored();
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ProtocolError& e) {
      py::set_error(mod.attr("ProtocolError"), e.what());
    } catch (const CryptoError& e) {
      py::set_error(mod.attr("CryptoError"), e.what());
    } catch (const NetError& e) {
      py::set_error(mod.attr("NetworkError"), e.what());
    } catch (const Error& e) {  // base last
      py::set_error(mod.attr("MindFedError"), e.what());
    }
  });
  m.def("_raise_for_test", &RaiseForTest, py::arg("kind"),
        "Raise the C++ error named by kind (protocol, crypto, net, base); for tests only.");
}

}  // namespace mindfed::bindings
