#include "controller/device/usb_libusb_port.h"

#include <gtest/gtest.h>
#include <libusb.h>

#include <chrono>

#include "controller/device/usb_device_client.h"

namespace dmahil::controller {
namespace {

using Clock = std::chrono::steady_clock;

v1::UsbEngine Engine(const std::string& serial = "X") {
  v1::UsbEngine e;
  e.set_vid(0x1d50);
  e.set_pid(0x6170);
  e.set_serial(serial);
  e.set_interface(0);
  e.set_ep_out(0x02);
  e.set_ep_in(0x82);
  return e;
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const DeviceError& e) {
    return e.what();
  }
  return "(no DeviceError)";
}

// The machine has no USB bus: libusb_init succeeds and lists no devices.
TEST(UsbRealLibusb, MissingDeviceIsOneClearErrorQuickly) {
  const Clock::time_point start = Clock::now();
  EXPECT_EQ(ErrorOf([] { MakeUsbDeviceClient(Engine()); }),
            "usb 1d50:6170 serial X: no such device (0 devices with this vid:pid)");
  v1::UsbEngine no_serial = Engine("");
  no_serial.set_timeout_ms(100);
  EXPECT_EQ(ErrorOf([&] { MakeUsbDeviceClient(no_serial); }),
            "usb 1d50:6170: no such device (0 devices with this vid:pid)");
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

TEST(UsbRealLibusb, PortOpenReportsNoDeviceAndTransfersNeedAnOpenPort) {
  LibusbBulkPort port(Engine());
  EXPECT_EQ(port.name(), "usb 1d50:6170 serial X");
  const UsbResult r = port.Open();
  EXPECT_EQ(r.status, UsbStatus::kNoDevice);
  EXPECT_EQ(r.message, "no such device (0 devices with this vid:pid)");
  EXPECT_FALSE(port.is_open());
  uint8_t buf[512];
  const UsbResult in = port.BulkIn(buf, sizeof buf, 10);
  EXPECT_EQ(in.status, UsbStatus::kOther);
  EXPECT_EQ(in.message, "the device is not open");
  EXPECT_EQ(port.BulkOut(buf, 4, 10).status, UsbStatus::kOther);
  port.Close();  // idempotent
}

TEST(UsbWiring, BadFieldsAreRefusedByName) {
  v1::UsbEngine e = Engine();
  e.set_ep_in(0x02);
  EXPECT_EQ(ErrorOf([&] { LibusbBulkPort p(e); }),
            "usb 1d50:6170 serial X: bad USB wiring: ep_in 0x02 is not a bulk IN endpoint "
            "address (0x81..0x8f, e.g. 0x82)");
  e = Engine();
  e.set_ep_out(0x81);
  EXPECT_NE(ErrorOf([&] { MakeUsbDeviceClient(e); }).find("ep_out 0x81 is not a bulk OUT"),
            std::string::npos);
  e = Engine();
  e.set_vid(0x12345);
  EXPECT_NE(ErrorOf([&] { ValidateUsbEngine(e); }).find("vid 0x12345 does not fit 16 bits"),
            std::string::npos);
  e = Engine();
  e.set_interface(256);
  EXPECT_NE(ErrorOf([&] { ValidateUsbEngine(e); }).find("interface 256"), std::string::npos);
  EXPECT_EQ(ErrorOf([] { ValidateUsbEngine(Engine()); }), "(no DeviceError)");
}

TEST(UsbNames, DeviceNameAndLibusbErrors) {
  v1::UsbEngine e = Engine("");
  e.set_vid(0x0403);
  e.set_pid(0x601f);
  EXPECT_EQ(UsbDeviceName(e), "usb 0403:601f");
  EXPECT_EQ(UsbDeviceName(Engine("FT601-A1")), "usb 1d50:6170 serial FT601-A1");

  EXPECT_EQ(UsbStatusFromLibusb(0), UsbStatus::kOk);
  EXPECT_EQ(UsbStatusFromLibusb(7), UsbStatus::kOk);  // a byte count
  EXPECT_EQ(UsbStatusFromLibusb(LIBUSB_ERROR_TIMEOUT), UsbStatus::kTimeout);
  EXPECT_EQ(UsbStatusFromLibusb(LIBUSB_ERROR_NO_DEVICE), UsbStatus::kNoDevice);
  EXPECT_EQ(UsbStatusFromLibusb(LIBUSB_ERROR_PIPE), UsbStatus::kPipe);
  EXPECT_EQ(UsbStatusFromLibusb(LIBUSB_ERROR_OVERFLOW), UsbStatus::kOverflow);
  EXPECT_EQ(UsbStatusFromLibusb(LIBUSB_ERROR_ACCESS), UsbStatus::kOther);
  EXPECT_EQ(UsbStatusFromLibusb(LIBUSB_ERROR_BUSY), UsbStatus::kOther);
  EXPECT_EQ(LibusbErrorText(LIBUSB_ERROR_TIMEOUT), "LIBUSB_ERROR_TIMEOUT (Operation timed out)");
  EXPECT_STREQ(UsbStatusName(UsbStatus::kNoDevice), "no-device");
}

UsbCandidate Candidate(std::string serial, int open_error = 0) {
  UsbCandidate c;
  c.location = "bus 1 address 4";
  c.serial = std::move(serial);
  c.open_error = open_error;
  return c;
}

TEST(UsbSelect, BySerialAndVidPid) {
  UsbSelection s = SelectUsbCandidate({}, "X");
  EXPECT_EQ(s.index, -1);
  EXPECT_EQ(s.error.status, UsbStatus::kNoDevice);
  EXPECT_EQ(s.error.message, "no such device (0 devices with this vid:pid)");

  s = SelectUsbCandidate({Candidate("A"), Candidate("B")}, "B");
  EXPECT_EQ(s.index, 1);
  EXPECT_TRUE(s.error.ok());

  s = SelectUsbCandidate({Candidate("A"), Candidate("B")}, "C");
  EXPECT_EQ(s.index, -1);
  EXPECT_EQ(s.error.status, UsbStatus::kNoDevice);
  EXPECT_EQ(s.error.message, "no such device (2 devices with this vid:pid, serials A, B)");

  s = SelectUsbCandidate({Candidate("A")}, "");
  EXPECT_EQ(s.index, 0);

  s = SelectUsbCandidate({Candidate("A"), Candidate("")}, "");
  EXPECT_EQ(s.index, -1);
  EXPECT_EQ(s.error.status, UsbStatus::kOther);
  EXPECT_EQ(s.error.message,
            "2 devices with this vid:pid (serials A, (none)): set serial in the farm file to "
            "choose one");

  s = SelectUsbCandidate({Candidate("A"), Candidate("A")}, "A");
  EXPECT_EQ(s.index, -1);
  EXPECT_NE(s.error.message.find("2 devices with this vid:pid have serial A"), std::string::npos);
}

TEST(UsbSelect, UnopenableDevicesSayWhy) {
  UsbSelection s = SelectUsbCandidate({Candidate("", LIBUSB_ERROR_ACCESS)}, "");
  EXPECT_EQ(s.index, -1);
  EXPECT_EQ(s.error.status, UsbStatus::kOther);
  EXPECT_EQ(s.error.message,
            "cannot open the device at bus 1 address 4: LIBUSB_ERROR_ACCESS (Access denied "
            "(insufficient permissions)) (check the permissions of /dev/bus/usb, e.g. a udev "
            "rule)");

  s = SelectUsbCandidate({Candidate("A"), Candidate("", LIBUSB_ERROR_ACCESS)}, "X");
  EXPECT_EQ(s.index, -1);
  EXPECT_EQ(s.error.status, UsbStatus::kOther);
  EXPECT_NE(s.error.message.find("serials A); 1 could not be opened"), std::string::npos)
      << s.error.message;
  EXPECT_NE(s.error.message.find("LIBUSB_ERROR_ACCESS"), std::string::npos);

  // The wanted one opened fine: an unopenable other device does not matter.
  s = SelectUsbCandidate({Candidate("", LIBUSB_ERROR_ACCESS), Candidate("X")}, "X");
  EXPECT_EQ(s.index, 1);
}

// A configuration descriptor as libusb_get_active_config_descriptor returns it.
struct Config {
  std::vector<libusb_endpoint_descriptor> eps;
  std::vector<libusb_interface_descriptor> alts;
  std::vector<libusb_interface> itfs;
  libusb_config_descriptor cfg{};

  // Interface `number` (alt 0) with endpoints (address, attributes, wMaxPacketSize).
  explicit Config(uint8_t number, std::vector<std::tuple<uint8_t, uint8_t, uint16_t>> endpoints) {
    for (const auto& [addr, attr, mps] : endpoints) {
      libusb_endpoint_descriptor ep{};
      ep.bEndpointAddress = addr;
      ep.bmAttributes = attr;
      ep.wMaxPacketSize = mps;
      eps.push_back(ep);
    }
    libusb_interface_descriptor alt{};
    alt.bInterfaceNumber = number;
    alt.bNumEndpoints = static_cast<uint8_t>(eps.size());
    alt.endpoint = eps.data();
    alts.push_back(alt);
    libusb_interface itf{};
    itf.altsetting = alts.data();
    itf.num_altsetting = 1;
    itfs.push_back(itf);
    cfg.bNumInterfaces = 1;
    cfg.interface = itfs.data();
  }
};

TEST(UsbEndpoints, BulkPairIsFoundWithItsPacketSizes) {
  const Config c(0, {{0x81, LIBUSB_TRANSFER_TYPE_INTERRUPT, 8},
                     {0x02, LIBUSB_TRANSFER_TYPE_BULK, 512},
                     {0x82, LIBUSB_TRANSFER_TYPE_BULK, 0x1800 | 512}});  // reserved bits
  UsbEndpointSizes sizes;
  const UsbResult r = FindBulkEndpoints(c.cfg, Engine(), sizes);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(sizes.out_max_packet, 512u);
  EXPECT_EQ(sizes.in_max_packet, 512u);
}

TEST(UsbEndpoints, WhatIsMissingIsNamed) {
  UsbEndpointSizes sizes;
  const Config other_itf(1, {{0x02, LIBUSB_TRANSFER_TYPE_BULK, 64}});
  UsbResult r = FindBulkEndpoints(other_itf.cfg, Engine(), sizes);
  EXPECT_EQ(r.status, UsbStatus::kOther);
  EXPECT_EQ(r.message, "the active configuration has no interface 0 (interfaces: 1)");

  const Config no_in(
      0, {{0x02, LIBUSB_TRANSFER_TYPE_BULK, 64}, {0x81, LIBUSB_TRANSFER_TYPE_BULK, 64}});
  r = FindBulkEndpoints(no_in.cfg, Engine(), sizes);
  EXPECT_EQ(r.message, "interface 0 has no endpoint ep_in 0x82 (endpoints: 0x02 bulk, 0x81 bulk)");

  const Config interrupt_in(
      0, {{0x02, LIBUSB_TRANSFER_TYPE_BULK, 64}, {0x82, LIBUSB_TRANSFER_TYPE_INTERRUPT, 64}});
  r = FindBulkEndpoints(interrupt_in.cfg, Engine(), sizes);
  EXPECT_EQ(r.message, "ep_in 0x82 of interface 0 is an interrupt endpoint, not bulk");

  const Config zero(0,
                    {{0x02, LIBUSB_TRANSFER_TYPE_BULK, 0}, {0x82, LIBUSB_TRANSFER_TYPE_BULK, 64}});
  r = FindBulkEndpoints(zero.cfg, Engine(), sizes);
  EXPECT_EQ(r.message, "ep_out 0x02 has wMaxPacketSize 0");
  EXPECT_EQ(sizes.out_max_packet, 0u);  // untouched on failure
}

}  // namespace
}  // namespace dmahil::controller
