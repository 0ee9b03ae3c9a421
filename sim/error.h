// Errors raised by the virtual board model; the agent maps them to gRPC status codes.
#pragma once

#include <stdexcept>
#include <string>

namespace dmahil::sim {

/// Why a model operation was refused. Mirrors the gRPC codes the agent answers with.
enum class ErrorCode {
  kInvalidArgument,     // malformed request: size, alignment, range
  kNotFound,            // unknown gref, buffer, mapping
  kFailedPrecondition,  // valid request in the wrong state (e.g. grant already mapped)
  kOutOfRange,          // address outside RAM / a mapping
  kResourceExhausted,   // out of frames, grant entries or swiotlb slots
};

/// A refused model operation: the model's state is unchanged when it is thrown.
class SimError : public std::runtime_error {
 public:
  SimError(ErrorCode code, const std::string& what) : std::runtime_error(what), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace dmahil::sim
