#include "controller/device/device_client.h"

#include <fmt/format.h>

#include "common/framing.h"

namespace dmahil::controller {

FramedRequest FrameRequest(const v1::DeviceRequest& request, uint64_t& next_tag,
                           std::string_view device) {
  FramedRequest out{request, {}};
  if (out.request.tag() == 0) out.request.set_tag(++next_tag);
  try {
    out.frame = framing::EncodeFrame(out.request);
  } catch (const framing::FramingError& e) {
    throw DeviceError(fmt::format("{}: {}", device, e.what()));
  }
  return out;
}

v1::DeviceResponse DeviceClient::Info() {
  v1::DeviceRequest req;
  req.mutable_info();
  return Transact(req);
}

v1::DeviceResponse DeviceClient::Read(uint64_t bus_addr, uint32_t length) {
  v1::DeviceRequest req;
  req.mutable_read()->set_bus_addr(bus_addr);
  req.mutable_read()->set_length(length);
  return Transact(req);
}

v1::DeviceResponse DeviceClient::Write(uint64_t bus_addr, std::string_view bytes) {
  v1::DeviceRequest req;
  req.mutable_write()->set_bus_addr(bus_addr);
  req.mutable_write()->set_data(std::string(bytes));
  return Transact(req);
}

v1::DeviceResponse DeviceClient::Fill(uint64_t bus_addr, uint32_t length,
                                      const v1::PatternSpec& pattern) {
  v1::DeviceRequest req;
  req.mutable_fill()->set_bus_addr(bus_addr);
  req.mutable_fill()->set_length(length);
  *req.mutable_fill()->mutable_pattern() = pattern;
  return Transact(req);
}

v1::DeviceResponse DeviceClient::Check(uint64_t bus_addr, uint32_t length,
                                       const v1::PatternSpec& pattern, uint32_t max_findings) {
  v1::DeviceRequest req;
  req.mutable_check()->set_bus_addr(bus_addr);
  req.mutable_check()->set_length(length);
  *req.mutable_check()->mutable_pattern() = pattern;
  req.mutable_check()->set_max_findings(max_findings);
  return Transact(req);
}

}  // namespace dmahil::controller
