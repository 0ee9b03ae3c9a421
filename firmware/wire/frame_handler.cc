#include "firmware/wire/frame_handler.h"

#include <pb_decode.h>
#include <pb_encode.h>

#include "dmahil/v1/device.npb.h"

namespace dmahil::firmware::wire {
namespace {

// A message made of two static strings, either of which may be null: e.g. a fixed prefix
// and nanopb's error string.
struct Text {
  const char* head = nullptr;
  const char* tail = nullptr;
};

// Bytes to encode (Read data).
struct Bytes {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// Findings to encode (Check).
struct Findings {
  const pattern::Finding* items = nullptr;
  uint32_t count = 0;
};

// WriteOp.data as received: where in the payload it lies. [begin, end) is the payload.
struct WriteData {
  uintptr_t begin = 0;
  uintptr_t end = 0;
  const uint8_t* data = nullptr;
  size_t size = 0;
};

size_t Length(const char* s) { return s == nullptr ? 0 : __builtin_strlen(s); }

const pb_byte_t* AsBytes(const char* s) { return reinterpret_cast<const pb_byte_t*>(s); }

// nanopb decode callback for WriteOp.data: records where the bytes lie in the payload
// (zero-copy) and skips them. A bytes field sent length-delimited (as it must be) reaches
// here as a substream of the payload itself; sent with a scalar wire type, nanopb hands
// over a copy on its own stack instead, which is refused as a malformed request.
bool DecodeWriteData(pb_istream_t* stream, const pb_field_t* /*field*/, void** arg) {
  auto* w = static_cast<WriteData*>(*arg);
  const auto at = reinterpret_cast<uintptr_t>(stream->state);
  const size_t n = stream->bytes_left;
  if (at < w->begin || at > w->end || n > w->end - at) {
    PB_RETURN_ERROR(stream, "write data has a wrong wire type");
  }
  w->data = static_cast<const uint8_t*>(stream->state);
  w->size = n;
  return pb_read(stream, nullptr, n);
}

// nanopb message-level callback of DeviceRequest.op, called before a oneof member is
// decoded (option submsg_callback): hooks DecodeWriteData on a WriteOp.
bool PrepareOp(pb_istream_t* /*stream*/, const pb_field_t* field, void** arg) {
  if (field->tag == dmahil_v1_DeviceRequest_write_tag) {
    auto* op = static_cast<dmahil_v1_WriteOp*>(field->pData);
    op->data.funcs.decode = &DecodeWriteData;
    op->data.arg = *arg;
  }
  return true;
}

// nanopb encode callback of a string field: a Text, omitted when empty (proto3).
bool EncodeText(pb_ostream_t* stream, const pb_field_t* field, void* const* arg) {
  const auto* t = static_cast<const Text*>(*arg);
  const size_t head = Length(t->head);
  const size_t tail = Length(t->tail);
  if (head + tail == 0) return true;
  return pb_encode_tag_for_field(stream, field) && pb_encode_varint(stream, head + tail) &&
         pb_write(stream, AsBytes(t->head), head) && pb_write(stream, AsBytes(t->tail), tail);
}

// nanopb encode callback of a bytes field: Bytes, omitted when empty (proto3).
bool EncodeBytes(pb_ostream_t* stream, const pb_field_t* field, void* const* arg) {
  const auto* b = static_cast<const Bytes*>(*arg);
  if (b->size == 0) return true;
  return pb_encode_tag_for_field(stream, field) && pb_encode_string(stream, b->data, b->size);
}

// nanopb encode callback of CheckSummary.mismatches: one LineFinding per finding.
bool EncodeFindings(pb_ostream_t* stream, const pb_field_t* field, void* const* arg) {
  const auto* f = static_cast<const Findings*>(*arg);
  for (uint32_t i = 0; i < f->count; ++i) {
    const pattern::Finding& x = f->items[i];
    dmahil_v1_LineFinding lf = dmahil_v1_LineFinding_init_zero;
    lf.line = x.line;
    lf.cls = static_cast<dmahil_v1_LineClass>(x.cls);  // values equal (pattern.h)
    lf.found_buffer = x.found_buffer;
    lf.found_generation = x.found_generation;
    lf.found_line = x.found_line;
    lf.good_words = x.good_words;
    if (!pb_encode_tag_for_field(stream, field) ||
        !pb_encode_submessage(stream, dmahil_v1_LineFinding_fields, &lf)) {
      return false;
    }
  }
  return true;
}

dmahil_v1_DeviceStatus ToProto(Status s) {
  switch (s) {
    case Status::kOk:
      return dmahil_v1_DeviceStatus_DEVICE_OK;
    case Status::kBusError:
      return dmahil_v1_DeviceStatus_DEVICE_BUS_ERROR;
    case Status::kBadRequest:
      return dmahil_v1_DeviceStatus_DEVICE_BAD_REQUEST;
  }
  return dmahil_v1_DeviceStatus_DEVICE_STATUS_UNSPECIFIED;
}

pattern::Spec SpecOf(const dmahil_v1_PatternSpec& p) {
  pattern::Spec s;
  s.seed = p.seed;
  s.buffer_id = p.buffer_id;
  s.generation = p.generation;
  s.first_line = p.first_line;
  s.line_size = p.line_size;  // 0 when the pattern is absent: the engine refuses it
  return s;
}

void SetText(pb_callback_t& field, const Text& text) {
  field.funcs.encode = &EncodeText;
  field.arg = const_cast<Text*>(&text);
}

// Encodes `resp` as a frame into `out` (kMaxResponseFrameBytes bytes). If it does not fit
// (it always does: see kMaxResponsePayload), the tag and status go out with a message
// saying so and nothing else.
size_t EncodeResponse(dmahil_v1_DeviceResponse& resp, uint8_t* out) {
  pb_ostream_t os = pb_ostream_from_buffer(out + kFrameHeaderBytes, kMaxResponsePayload);
  if (!pb_encode(&os, dmahil_v1_DeviceResponse_fields, &resp)) {
    static const Text kTooBig{"response does not fit the device's buffer", nullptr};
    dmahil_v1_DeviceResponse small = dmahil_v1_DeviceResponse_init_zero;
    small.tag = resp.tag;
    small.status = resp.status;
    SetText(small.message, kTooBig);
    os = pb_ostream_from_buffer(out + kFrameHeaderBytes, kMaxResponsePayload);
    if (!pb_encode(&os, dmahil_v1_DeviceResponse_fields, &small)) os.bytes_written = 0;
  }
  EncodeFrameLength(static_cast<uint32_t>(os.bytes_written), out);
  return kFrameHeaderBytes + os.bytes_written;
}

}  // namespace

uint32_t DecodeFrameLength(const uint8_t* header) {
  return uint32_t{header[0]} | uint32_t{header[1]} << 8 | uint32_t{header[2]} << 16 |
         uint32_t{header[3]} << 24;
}

void EncodeFrameLength(uint32_t payload_len, uint8_t* header) {
  for (uint32_t i = 0; i < kFrameHeaderBytes; ++i) {
    header[i] = static_cast<uint8_t>(payload_len >> (8 * i));
  }
}

FrameHandler::FrameHandler(CommandProcessor& engine) : engine_(engine), read_buf_{}, findings_{} {}

Reply FrameHandler::Refuse(const char* why, uint8_t* out, size_t out_capacity) {
  if (out == nullptr || out_capacity < kMaxResponseFrameBytes) return Reply{};
  const Text text{why, nullptr};
  dmahil_v1_DeviceResponse resp = dmahil_v1_DeviceResponse_init_zero;
  resp.status = dmahil_v1_DeviceStatus_DEVICE_BAD_REQUEST;
  SetText(resp.message, text);
  Reply reply;
  reply.size = EncodeResponse(resp, out);
  return reply;
}

Reply FrameHandler::HandleFrame(const uint8_t* frame, size_t frame_len, uint8_t* out,
                                size_t out_capacity) {
  if (out == nullptr || out_capacity < kMaxResponseFrameBytes) return Reply{};
  if (frame == nullptr || frame_len < kFrameHeaderBytes) {
    return Refuse("frame is shorter than its 4-byte length prefix", out, out_capacity);
  }
  const uint32_t len = DecodeFrameLength(frame);
  if (len > kMaxFramePayload) {
    return Refuse("frame length exceeds the 16 MiB limit", out, out_capacity);
  }
  if (len != frame_len - kFrameHeaderBytes) {
    return Refuse("frame length prefix does not match the bytes received", out, out_capacity);
  }
  return HandlePayload(frame + kFrameHeaderBytes, len, out, out_capacity);
}

Reply FrameHandler::HandlePayload(const uint8_t* payload, size_t payload_len, uint8_t* out,
                                  size_t out_capacity) {
  if (out == nullptr || out_capacity < kMaxResponseFrameBytes) return Reply{};
  if (payload_len > kMaxFramePayload) {
    return Refuse("frame length exceeds the 16 MiB limit", out, out_capacity);
  }
  if (payload == nullptr && payload_len != 0) {
    return Refuse("frame payload is missing", out, out_capacity);
  }

  WriteData write_data;
  write_data.begin = reinterpret_cast<uintptr_t>(payload);
  write_data.end = write_data.begin + payload_len;
  dmahil_v1_DeviceRequest req = dmahil_v1_DeviceRequest_init_zero;
  req.cb_op.funcs.decode = &PrepareOp;
  req.cb_op.arg = &write_data;
  pb_istream_t in = pb_istream_from_buffer(payload, payload_len);
  if (!pb_decode(&in, dmahil_v1_DeviceRequest_fields, &req)) {
    const Text text{"request is not a valid DeviceRequest: ", PB_GET_ERROR(&in)};
    dmahil_v1_DeviceResponse resp = dmahil_v1_DeviceResponse_init_zero;
    resp.status = dmahil_v1_DeviceStatus_DEVICE_BAD_REQUEST;
    SetText(resp.message, text);
    Reply reply;
    reply.size = EncodeResponse(resp, out);
    return reply;
  }

  dmahil_v1_DeviceResponse resp = dmahil_v1_DeviceResponse_init_zero;
  resp.tag = req.tag;
  Result r;
  Text engine_name;
  Bytes data;
  Findings found;
  switch (req.which_op) {
    case dmahil_v1_DeviceRequest_info_tag: {
      const EngineInfo& info = engine_.Info();
      engine_name.head = info.engine;
      resp.has_info = true;
      SetText(resp.info.engine, engine_name);
      resp.info.max_transfer = info.max_transfer;
      resp.info.address_bits = info.address_bits;
      break;
    }
    case dmahil_v1_DeviceRequest_read_tag: {
      const dmahil_v1_ReadOp& op = req.op.read;
      r = engine_.Read({op.bus_addr, op.length}, read_buf_, sizeof read_buf_);
      if (r.status == Status::kOk) {
        data = {read_buf_, op.length};
        resp.data.funcs.encode = &EncodeBytes;
        resp.data.arg = &data;
      }
      break;
    }
    case dmahil_v1_DeviceRequest_write_tag:
      // write_data.size <= payload_len <= kMaxFramePayload: it fits 32 bits.
      r = engine_.Write(
          {req.op.write.bus_addr, write_data.data, static_cast<uint32_t>(write_data.size)});
      break;
    case dmahil_v1_DeviceRequest_fill_tag: {
      const dmahil_v1_FillOp& op = req.op.fill;
      r = engine_.Fill({op.bus_addr, op.length, SpecOf(op.pattern)});
      break;
    }
    case dmahil_v1_DeviceRequest_check_tag: {
      const dmahil_v1_CheckOp& op = req.op.check;
      r = engine_.Check({op.bus_addr, op.length, SpecOf(op.pattern), op.max_findings}, findings_,
                        kMaxFindings);
      if (r.status == Status::kOk) {
        resp.has_check = true;
        resp.check.lines_checked = r.lines_checked;
        resp.check.lines_ok = r.lines_ok;
        resp.check.mismatches_total = r.mismatches_total;
        found = {findings_, r.findings_count};
        resp.check.mismatches.funcs.encode = &EncodeFindings;
        resp.check.mismatches.arg = &found;
      }
      break;
    }
    default:
      r.status = Status::kBadRequest;
      r.message = "request has no op";
      break;
  }
  resp.status = ToProto(r.status);
  if (r.has_fault) resp.fault_addr = r.fault_addr;
  const Text message{r.message, nullptr};
  SetText(resp.message, message);

  Reply reply;
  reply.parsed = true;
  reply.status = r.status;
  reply.size = EncodeResponse(resp, out);
  return reply;
}

}  // namespace dmahil::firmware::wire
