// profiler.cpp: libtorch's own profiler (Kineto, CPU activities) around a stretch of work,
// returning every operator call (aten's, and our fused attention's) with its start, duration,
// thread, input shapes and scalar arguments as JSON (see include/ctorch.h, "Profiling").
// benchmarks/flops.py counts FLOPs from it as PyTorch's FlopCounterMode does, for ours and the
// peers alike; benchmarks/profile.py compares where the time goes.
#include "ctorch.h"
#include "shim.hpp"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <cstring>
#include <set>
#include <sstream>
#include <string>

namespace {
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

ProfilerConfig config() {
  return ProfilerConfig(ProfilerState::KINETO, /*report_input_shapes=*/true, /*profile_memory=*/false, /*with_stack=*/false,
                        /*with_flops=*/false, /*with_modules=*/false);
}

std::string quoted(const std::string &text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if ((unsigned char)c >= 0x20) out += c;
  }
  return out + "\"";
}

// A scalar argument as JSON: numbers, booleans, lists of them; anything else (tensors) null.
std::string json(const c10::IValue &value) {
  std::ostringstream out;
  if (value.isInt()) {
    out << value.toInt();
  } else if (value.isBool()) {
    out << (value.toBool() ? "true" : "false");
  } else if (value.isDouble()) {
    out << value.toDouble();
  } else if (value.isIntList()) {
    out << "[";
    auto list = value.toIntVector();
    for (size_t i = 0; i < list.size(); i++) out << (i ? "," : "") << list[i];
    out << "]";
  } else if (value.isBoolList()) {
    out << "[";
    auto list = value.toBoolList();
    for (size_t i = 0; i < list.size(); i++) out << (i ? "," : "") << (list.get(i) ? "true" : "false");
    out << "]";
  } else if (value.isList()) {
    out << "[";
    auto list = value.toListRef();
    for (size_t i = 0; i < list.size(); i++) out << (i ? "," : "") << json(list[i]);
    out << "]";
  } else {
    out << "null";
  }
  return out.str();
}
}  // namespace

int ct_profile_begin(void) {
  STATUS(std::set<ActivityType> activities{ActivityType::CPU}; torch::autograd::profiler::prepareProfiler(config(), activities);
         torch::autograd::profiler::enableProfiler(config(), activities))
}

char *ct_profile_end(void) {
  PROTECT(
      auto result = torch::autograd::profiler::disableProfiler(); std::ostringstream out; out << "[";
      bool first = true;
      for (const auto &event : result->events()) {
        if (event.deviceType() != c10::DeviceType::CPU || (event.name().rfind("aten::", 0) != 0 && event.name().rfind("afterimage::", 0) != 0)) continue;
        out << (first ? "" : ",\n") << "{\"name\":" << quoted(event.name()) << ",\"start_ns\":" << event.startNs()
            << ",\"duration_ns\":" << event.durationNs() << ",\"thread\":" << event.startThreadId() << ",\"shapes\":[";
        first = false;
        auto shapes = event.shapes();
        for (size_t i = 0; i < shapes.size(); i++) {
          out << (i ? "," : "") << "[";
          for (size_t j = 0; j < shapes[i].size(); j++) out << (j ? "," : "") << shapes[i][j];
          out << "]";
        }
        out << "],\"concrete\":[";
        if (event.hasConcreteInputs()) {
          auto inputs = event.concreteInputs();
          for (size_t i = 0; i < inputs.size(); i++) out << (i ? "," : "") << json(inputs[i]);
        }
        out << "]}";
      } out << "]";
      return strdup(out.str().c_str());, nullptr)
}
