// Declarations ProcessGroupGloo.hpp needs from Gloo's gloo/transport/: types it holds by pointer.
#pragma once

namespace gloo {
namespace transport {
class Device;
class UnboundBuffer;
}  // namespace transport
}  // namespace gloo
