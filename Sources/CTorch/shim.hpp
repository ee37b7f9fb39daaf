// shim.hpp: what the shim's C++ files share (ctorch.cpp, distributed.cpp, attention.cpp,
// profiler.cpp): the tensor handle, the thread-local error slot and the macros that turn C++
// exceptions into it.
#pragma once
#include <string>

#include <ATen/ATen.h>

struct ct_tensor_s {
  at::Tensor tensor;
};

// libtorch's last message on this thread (read by ct_last_error); defined in ctorch.cpp.
extern thread_local std::string last_error;
extern thread_local bool has_error;

#define PROTECT(body, failure)                                                               \
  try {                                                                                      \
    body                                                                                     \
  } catch (const c10::Error &e) {                                                            \
    last_error = e.what_without_backtrace();                                                 \
    has_error = true;                                                                        \
    return failure;                                                                          \
  } catch (const std::exception &e) {                                                        \
    last_error = e.what();                                                                   \
    has_error = true;                                                                        \
    return failure;                                                                          \
  } catch (...) {                                                                            \
    last_error = "an unknown C++ exception";                                                 \
    has_error = true;                                                                        \
    return failure;                                                                          \
  }

// Wraps a statement that returns 0 on success.
#define STATUS(stmt) PROTECT(stmt; return 0;, -1)

inline ct_tensor wrap(at::Tensor t) { return new ct_tensor_s{std::move(t)}; }
inline const at::Tensor &T(ct_tensor t) { return t->tensor; }
