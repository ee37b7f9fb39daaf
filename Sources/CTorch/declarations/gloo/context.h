// Declarations ProcessGroupGloo.hpp needs from Gloo's gloo/context.h (see distributed.cpp): the
// context is held by pointer, and an inline setter names setTimeout. Never defined or called here.
#pragma once
#include <chrono>

namespace gloo {
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo
