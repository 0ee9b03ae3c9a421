#include "controller/report/junit.h"

#include <cstring>
#include <string>

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include "controller/report/test_results.h"

namespace dmahil::report {
namespace {

pugi::xml_document Parse(const std::string& xml) {
  pugi::xml_document doc;
  const pugi::xml_parse_result ok = doc.load_string(xml.c_str());
  EXPECT_TRUE(ok) << ok.description() << "\n" << xml;
  return doc;
}

TEST(ReportJunit, ParsesBackWithCountsPerBoard) {
  const auto doc = Parse(RenderJunit(testing::SampleResults(), testing::SampleRun()));
  const auto suites = doc.child("testsuites");
  EXPECT_STREQ(suites.attribute("name").value(), "nightly");
  EXPECT_EQ(suites.attribute("tests").as_int(), 5);
  EXPECT_EQ(suites.attribute("failures").as_int(), 3);
  EXPECT_EQ(suites.attribute("errors").as_int(), 1);

  std::string names;
  for (auto suite : suites.children("testsuite"))
    names += std::string(suite.attribute("name").value()) + ",";
  EXPECT_EQ(names, "rpi4-clean,rpi4-no-offset,zcu102,qemu-xen,");

  const auto bad = suites.find_child_by_attribute("testsuite", "name", "rpi4-no-offset");
  EXPECT_EQ(bad.attribute("tests").as_int(), 2);
  EXPECT_EQ(bad.attribute("failures").as_int(), 2);
  EXPECT_EQ(bad.attribute("errors").as_int(), 0);
  EXPECT_STREQ(bad.child("properties")
                   .find_child_by_attribute("property", "name", "seed")
                   .attribute("value")
                   .value(),
               "244837814094590");
}

// Each board's suite names the kernel and hypervisor it booted; boards without them omit them.
TEST(ReportJunit, SuitesNameTheBoardsSoftware) {
  RunInfo run = testing::SampleRun();
  run.software.push_back({"qemu-xen", "Linux debian/6.1.192-3 (tree /t)", "Xen /x (sha256 00)"});
  const auto doc = Parse(RenderJunit(testing::SampleResults(), run));
  const auto suites = doc.child("testsuites");
  const auto props =
      suites.find_child_by_attribute("testsuite", "name", "qemu-xen").child("properties");
  EXPECT_STREQ(
      props.find_child_by_attribute("property", "name", "kernel").attribute("value").value(),
      "Linux debian/6.1.192-3 (tree /t)");
  EXPECT_STREQ(
      props.find_child_by_attribute("property", "name", "hypervisor").attribute("value").value(),
      "Xen /x (sha256 00)");
  EXPECT_FALSE(suites.find_child_by_attribute("testsuite", "name", "zcu102")
                   .child("properties")
                   .find_child_by_attribute("property", "name", "kernel"));
}

TEST(ReportJunit, FailureAndErrorMessages) {
  const auto doc = Parse(RenderJunit(testing::SampleResults(), testing::SampleRun()));
  const auto bad =
      doc.child("testsuites").find_child_by_attribute("testsuite", "name", "rpi4-no-offset");
  const auto test = bad.find_child_by_attribute("testcase", "name", "grant-from-device");
  EXPECT_STREQ(test.attribute("classname").value(), "rpi4-no-offset");
  const auto failure = test.child("failure");
  ASSERT_TRUE(failure);
  EXPECT_EQ(std::string(failure.attribute("message").value()),
            "wrong-bus-address: device DMA'd to the CPU physical address: dma-ranges offset "
            "<0xc0000000> missing on all 4 pages, every line of the buffer came from elsewhere");
  EXPECT_STREQ(failure.attribute("type").value(), "wrong-bus-address");
  const std::string text = failure.text().get();
  EXPECT_NE(text.find("displacement -0xc0000000"), std::string::npos) << text;
  EXPECT_NE(text.find("pages  0-3  " + std::string(64, 'M')), std::string::npos) << text;
  EXPECT_NE(text.find("0x1e0000000"), std::string::npos) << text;

  const auto clean =
      doc.child("testsuites").find_child_by_attribute("testsuite", "name", "rpi4-clean");
  EXPECT_FALSE(clean.child("testcase").child("failure"));
  EXPECT_FALSE(clean.child("testcase").child("error"));

  const auto qemu =
      doc.child("testsuites").find_child_by_attribute("testsuite", "name", "qemu-xen");
  const auto error = qemu.child("testcase").child("error");
  ASSERT_TRUE(error);
  EXPECT_STREQ(error.attribute("message").value(),
               "agent did not answer within 120 s after power-on; board power-cycled twice");
}

TEST(ReportJunit, UnsetVerdictIsAnError) {
  auto r = testing::Result("b", "f", v1::VERDICT_UNSPECIFIED);
  const auto doc = Parse(RenderJunit({r}, testing::SampleRun()));
  EXPECT_EQ(doc.child("testsuites").attribute("errors").as_int(), 1);
  EXPECT_TRUE(doc.child("testsuites").child("testsuite").child("testcase").child("error"));
}

TEST(ReportJunit, ControlCharactersDoNotBreakXml) {
  auto r = testing::Result("b", "f", v1::VERDICT_ERROR);
  r.set_detail(std::string("console said \x1b[31mpanic\x01 & <oops>"));
  const auto doc = Parse(RenderJunit({r}, testing::SampleRun()));
  EXPECT_STREQ(doc.child("testsuites")
                   .child("testsuite")
                   .child("testcase")
                   .child("error")
                   .attribute("message")
                   .value(),
               "console said ?[31mpanic? & <oops>");
}

TEST(ReportJunit, DeterministicAndEmpty) {
  EXPECT_EQ(RenderJunit(testing::SampleResults(), testing::SampleRun()),
            RenderJunit(testing::SampleResults(), testing::SampleRun()));
  const auto doc = Parse(RenderJunit({}, testing::SampleRun()));
  EXPECT_EQ(doc.child("testsuites").attribute("tests").as_int(), 0);
}

}  // namespace
}  // namespace dmahil::report
