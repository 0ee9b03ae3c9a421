#include "firmware/host/codec.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace dmahil::device_host {
namespace {

using firmware::Reject;
using firmware::Result;
using firmware::Status;

// The fields every op shares, for messages.
struct OpView {
  const char* name = "request";
  uint64_t bus_addr = 0;
  uint64_t length = 0;
  const v1::PatternSpec* pattern = nullptr;
  uint32_t max_findings = 0;
};

OpView ViewOf(const v1::DeviceRequest& req) {
  OpView v;
  switch (req.op_case()) {
    case v1::DeviceRequest::kInfo:
      v.name = "info";
      break;
    case v1::DeviceRequest::kRead:
      v = {"read", req.read().bus_addr(), req.read().length(), nullptr, 0};
      break;
    case v1::DeviceRequest::kWrite:
      v = {"write", req.write().bus_addr(), req.write().data().size(), nullptr, 0};
      break;
    case v1::DeviceRequest::kFill:
      v = {"fill", req.fill().bus_addr(), req.fill().length(), &req.fill().pattern(), 0};
      break;
    case v1::DeviceRequest::kCheck:
      v = {"check", req.check().bus_addr(), req.check().length(), &req.check().pattern(),
           req.check().max_findings()};
      break;
    case v1::DeviceRequest::OP_NOT_SET:
      break;
  }
  return v;
}

uint32_t SaturatingU32(size_t n) {
  return static_cast<uint32_t>(std::min<size_t>(n, std::numeric_limits<uint32_t>::max()));
}

v1::DeviceStatus ToProto(Status s) {
  switch (s) {
    case Status::kOk:
      return v1::DEVICE_OK;
    case Status::kBusError:
      return v1::DEVICE_BUS_ERROR;
    case Status::kBadRequest:
      return v1::DEVICE_BAD_REQUEST;
  }
  return v1::DEVICE_STATUS_UNSPECIFIED;
}

Result RunCheck(firmware::CommandProcessor& engine, const v1::CheckOp& op,
                v1::DeviceResponse& resp) {
  firmware::CheckCmd cmd{op.bus_addr(), op.length(), SpecFromProto(op.pattern()),
                         op.max_findings()};
  const uint32_t want = cmd.max_findings == 0 ? firmware::kDefaultMaxFindings : cmd.max_findings;
  std::vector<pattern::Finding> findings(std::min(want, firmware::kMaxFindings));
  const Result r = engine.Check(cmd, findings.data(), SaturatingU32(findings.size()));
  if (r.status == Status::kOk) {
    v1::CheckSummary* sum = resp.mutable_check();
    sum->set_lines_checked(r.lines_checked);
    sum->set_lines_ok(r.lines_ok);
    sum->set_mismatches_total(r.mismatches_total);
    for (uint32_t i = 0; i < r.findings_count; ++i) {
      *sum->add_mismatches() = FindingToProto(findings[i]);
    }
  }
  return r;
}

Result Run(firmware::CommandProcessor& engine, const v1::DeviceRequest& req,
           v1::DeviceResponse& resp) {
  switch (req.op_case()) {
    case v1::DeviceRequest::kInfo: {
      const firmware::EngineInfo& info = engine.Info();
      resp.mutable_info()->set_engine(info.engine);
      resp.mutable_info()->set_max_transfer(info.max_transfer);
      resp.mutable_info()->set_address_bits(info.address_bits);
      return Result{};
    }
    case v1::DeviceRequest::kRead: {
      const firmware::ReadCmd cmd{req.read().bus_addr(), req.read().length()};
      // Never allocate more than the engine accepts; it refuses longer reads itself.
      std::string data(std::min(cmd.length, firmware::kMaxDataBytes), '\0');
      const Result r = engine.Read(cmd, reinterpret_cast<uint8_t*>(data.data()), data.size());
      if (r.status == Status::kOk) resp.set_data(std::move(data));
      return r;
    }
    case v1::DeviceRequest::kWrite: {
      const std::string& data = req.write().data();
      return engine.Write({req.write().bus_addr(), reinterpret_cast<const uint8_t*>(data.data()),
                           SaturatingU32(data.size())});
    }
    case v1::DeviceRequest::kFill:
      return engine.Fill(
          {req.fill().bus_addr(), req.fill().length(), SpecFromProto(req.fill().pattern())});
    case v1::DeviceRequest::kCheck:
      return RunCheck(engine, req.check(), resp);
    case v1::DeviceRequest::OP_NOT_SET:
      break;
  }
  Result r;
  r.status = Status::kBadRequest;
  r.message = "request has no op";
  return r;
}

}  // namespace

v1::PatternSpec SpecToProto(const pattern::Spec& spec) {
  v1::PatternSpec p;
  p.set_seed(spec.seed);
  p.set_buffer_id(spec.buffer_id);
  p.set_generation(spec.generation);
  p.set_first_line(spec.first_line);
  p.set_line_size(spec.line_size);
  return p;
}

pattern::Spec SpecFromProto(const v1::PatternSpec& spec) {
  pattern::Spec s;
  s.seed = spec.seed();
  s.buffer_id = spec.buffer_id();
  s.generation = spec.generation();
  s.first_line = spec.first_line();
  s.line_size = spec.line_size();
  return s;
}

v1::LineFinding FindingToProto(const pattern::Finding& finding) {
  v1::LineFinding f;
  f.set_line(finding.line);
  f.set_cls(static_cast<v1::LineClass>(finding.cls));
  f.set_found_buffer(finding.found_buffer);
  f.set_found_generation(finding.found_generation);
  f.set_found_line(finding.found_line);
  f.set_good_words(finding.good_words);
  return f;
}

std::string DescribeReject(const v1::DeviceRequest& req, const Result& result) {
  if (req.op_case() == v1::DeviceRequest::OP_NOT_SET) {
    return "request has no op (expected info, read, write, fill or check)";
  }
  const OpView v = ViewOf(req);
  const uint32_t ls = v.pattern != nullptr ? v.pattern->line_size() : 0;
  switch (result.reject) {
    case Reject::kZeroLength:
      return fmt::format("{} length is 0", v.name);
    case Reject::kTooLong:
      return fmt::format(
          "{} length {} exceeds the {}-byte limit", v.name, v.length,
          v.pattern != nullptr ? firmware::kMaxPatternBytes : firmware::kMaxDataBytes);
    case Reject::kBadLineSize:
      return fmt::format("{} line size {} is not a power of two in {}..{}", v.name, ls,
                         pattern::kMinLineSize, pattern::kMaxLineSize);
    case Reject::kNotLineMultiple:
      return fmt::format("{} length {} is not a multiple of line size {}", v.name, v.length, ls);
    case Reject::kUnaligned:
      return fmt::format("{} bus address {:#x} is not aligned to line size {}", v.name, v.bus_addr,
                         ls);
    case Reject::kAddressWraps:
      return fmt::format("{} of {} bytes at {:#x} wraps the 64-bit bus address space", v.name,
                         v.length, v.bus_addr);
    case Reject::kLineIndexOverflow:
      return fmt::format("{} from line {} over {} bytes passes line index 2^32-1", v.name,
                         v.pattern->first_line(), v.length);
    case Reject::kBadPatternId:
      return fmt::format("{} pattern buffer_id {} / generation {}: both must be at most 65535",
                         v.name, v.pattern->buffer_id(), v.pattern->generation());
    case Reject::kTooManyFindings:
      return fmt::format("{} max_findings {} exceeds {}", v.name, v.max_findings,
                         firmware::kMaxFindings);
    case Reject::kBufferTooSmall:
    case Reject::kNone:
      break;
  }
  return fmt::format("{}: {}", v.name, result.message);
}

v1::DeviceResponse Execute(firmware::CommandProcessor& engine, const v1::DeviceRequest& req) {
  v1::DeviceResponse resp;
  resp.set_tag(req.tag());
  const Result r = Run(engine, req, resp);
  resp.set_status(ToProto(r.status));
  if (r.has_fault) resp.set_fault_addr(r.fault_addr);
  const OpView v = ViewOf(req);
  switch (r.status) {
    case Status::kOk:
      if (r.has_fault) {
        resp.set_message(
            fmt::format("{} of {} bytes at {:#x}: some lines did not decode, the first at {:#x}",
                        v.name, v.length, v.bus_addr, r.fault_addr));
      }
      break;
    case Status::kBusError:
      resp.set_message(
          fmt::format("{} of {} bytes at {:#x}: bus error at {:#x} (address did "
                      "not decode)",
                      v.name, v.length, v.bus_addr, r.fault_addr));
      break;
    case Status::kBadRequest:
      resp.set_message(DescribeReject(req, r));
      break;
  }
  return resp;
}

}  // namespace dmahil::device_host
