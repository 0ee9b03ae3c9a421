// Writes the fuzzer's seed corpus: valid DeviceRequest frames (4-byte little-endian
// length + payload, docs/device-protocol.md) of every op, encoded with nanopb, one file
// per frame, into the folder given as the only argument (which must exist).
//   make_seeds DIR
#include <pb_encode.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dmahil/v1/device.npb.h"
#include "firmware/wire/frame_handler.h"

namespace {

namespace wire = dmahil::firmware::wire;

constexpr uint64_t kBase = 0x1000;  // the fuzz target's RAM window

struct Span {
  const uint8_t* data;
  size_t size;
};

bool EncodeSpan(pb_ostream_t* stream, const pb_field_t* field, void* const* arg) {
  const auto* s = static_cast<const Span*>(*arg);
  return pb_encode_tag_for_field(stream, field) && pb_encode_string(stream, s->data, s->size);
}

// The frame of `req`; exits on an encoding error.
std::vector<uint8_t> Frame(const dmahil_v1_DeviceRequest& req) {
  std::vector<uint8_t> frame(wire::kFrameHeaderBytes + 8192);
  pb_ostream_t os = pb_ostream_from_buffer(frame.data() + wire::kFrameHeaderBytes,
                                           frame.size() - wire::kFrameHeaderBytes);
  if (!pb_encode(&os, dmahil_v1_DeviceRequest_fields, &req)) {
    std::fprintf(stderr, "make_seeds: cannot encode: %s\n", PB_GET_ERROR(&os));
    std::exit(1);
  }
  wire::EncodeFrameLength(static_cast<uint32_t>(os.bytes_written), frame.data());
  frame.resize(wire::kFrameHeaderBytes + os.bytes_written);
  return frame;
}

void Save(const std::string& dir, const std::string& name, const std::vector<uint8_t>& frame) {
  const std::string path = dir + "/seed-" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(frame.data(), 1, frame.size(), f) != frame.size() ||
      std::fclose(f) != 0) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

dmahil_v1_PatternSpec Spec(uint32_t line_size, uint32_t generation) {
  dmahil_v1_PatternSpec p = dmahil_v1_PatternSpec_init_zero;
  p.seed = 0x5eed;
  p.buffer_id = 3;
  p.generation = generation;
  p.first_line = 7;
  p.line_size = line_size;
  return p;
}

dmahil_v1_DeviceRequest Request(uint64_t tag, pb_size_t op) {
  dmahil_v1_DeviceRequest r = dmahil_v1_DeviceRequest_init_zero;
  r.tag = tag;
  r.which_op = op;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  const std::string dir = argv[1];

  Save(dir, "info", Frame(Request(1, dmahil_v1_DeviceRequest_info_tag)));

  dmahil_v1_DeviceRequest read = Request(2, dmahil_v1_DeviceRequest_read_tag);
  read.op.read = {kBase + 64, 256};
  Save(dir, "read", Frame(read));
  read.op.read = {kBase - 64, 128};  // a bus error
  Save(dir, "read-bus-error", Frame(read));

  std::vector<uint8_t> bytes(300);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7);
  Span span{bytes.data(), bytes.size()};
  dmahil_v1_DeviceRequest write = Request(3, dmahil_v1_DeviceRequest_write_tag);
  write.op.write.bus_addr = kBase + 100;
  write.op.write.data.funcs.encode = &EncodeSpan;
  write.op.write.data.arg = &span;
  Save(dir, "write", Frame(write));

  dmahil_v1_DeviceRequest fill = Request(4, dmahil_v1_DeviceRequest_fill_tag);
  fill.op.fill.bus_addr = kBase;
  fill.op.fill.length = 4096;
  fill.op.fill.has_pattern = true;
  fill.op.fill.pattern = Spec(64, 1);
  Save(dir, "fill", Frame(fill));
  fill.op.fill.pattern.line_size = 48;  // refused: not a power of two
  Save(dir, "fill-bad-line-size", Frame(fill));

  dmahil_v1_DeviceRequest check = Request(5, dmahil_v1_DeviceRequest_check_tag);
  check.op.check.bus_addr = kBase;
  check.op.check.length = 8192;
  check.op.check.has_pattern = true;
  check.op.check.pattern = Spec(128, 2);
  check.op.check.max_findings = 16;
  Save(dir, "check", Frame(check));
  check.op.check.bus_addr = kBase + 64 * 1024 - 1024;  // runs off the window: bus errors
  check.op.check.length = 2048;
  check.op.check.pattern = Spec(16, 1);
  Save(dir, "check-bus-error", Frame(check));

  Save(dir, "no-op", Frame(Request(6, 0)));
  return 0;
}
