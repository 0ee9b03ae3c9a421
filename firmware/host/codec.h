// The host build of the DMA engine, protocol side: converts dmahil.v1.DeviceRequest into
// the firmware's plain commands, runs them on a CommandProcessor, and converts the
// result into a dmahil.v1.DeviceResponse with a message that says why when it failed.
#pragma once

#include <string>

#include "common/pattern.h"
#include "dmahil/v1/device.pb.h"
#include "firmware/engine.h"

namespace dmahil::device_host {

/// The pattern engine's Spec for `spec`, field by field (validation is the engine's).
pattern::Spec SpecFromProto(const v1::PatternSpec& spec);

/// The protocol form of `spec`, field by field (the inverse of SpecFromProto).
v1::PatternSpec SpecToProto(const pattern::Spec& spec);

/// The protocol form of one finding.
v1::LineFinding FindingToProto(const pattern::Finding& finding);

/// A one-line explanation of why `req` was refused with `result` (status kBadRequest),
/// naming the offending values, e.g. "fill length 100 is not a multiple of line size 64".
std::string DescribeReject(const v1::DeviceRequest& req, const firmware::Result& result);

/// Executes `req` on `engine` and returns the response (tag echoed). Never throws for a
/// bad request: an unset op, a malformed size/alignment/line size or too many findings
/// gives DEVICE_BAD_REQUEST with a message; an address that did not decode gives
/// DEVICE_BUS_ERROR with fault_addr. Only std::bad_alloc can escape.
v1::DeviceResponse Execute(firmware::CommandProcessor& engine, const v1::DeviceRequest& req);

}  // namespace dmahil::device_host
