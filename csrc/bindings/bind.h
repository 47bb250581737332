// One Bind* function per bindings/*.cc file; module.cc calls them in order.
#pragma once

#include <pybind11/pybind11.h>

namespace mindfed::bindings {

namespace py = pybind11;

void BindErrors(py::module_ m);  // first: the translator must exist before anything can throw
void BindCrypto(py::module_ m);
void BindAgg(py::module_ m);
void BindBench(py::module_ m);
void BindCompression(py::module_ m);
void BindNet(py::module_ m);

}  // namespace mindfed::bindings
