#include "controller/report/results_json.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "controller/report/test_results.h"

namespace dmahil::report {
namespace {

using nlohmann::json;

TEST(ReportResultsJson, RoundTripsWithDisplacement) {
  const json doc = json::parse(RenderResultsJson(testing::SampleResults(), testing::SampleRun()));
  EXPECT_EQ(doc["seed"].get<uint64_t>(), 0xdeadbeefcafeULL);
  EXPECT_EQ(doc["farm"], "nightly");
  ASSERT_EQ(doc["results"].size(), 5u);

  const json& pass = doc["results"][0];
  EXPECT_EQ(pass["verdict"], "pass");
  EXPECT_TRUE(pass["diagnosis"].is_null());
  EXPECT_FALSE(pass.contains("displacement"));
  EXPECT_FALSE(pass.contains("displacement_hex"));

  const json& neg = doc["results"][1];
  EXPECT_EQ(neg["board"], "rpi4-no-offset");
  EXPECT_EQ(neg["verdict"], "fail");
  EXPECT_EQ(neg["diagnosis"], "wrong-bus-address");
  EXPECT_EQ(neg["displacement"].get<int64_t>(), -0xc0000000LL);
  EXPECT_EQ(neg["displacement_hex"], "-0xc0000000");
  EXPECT_EQ(neg["segments"][3]["dma_addr"], "0x120003000");
  EXPECT_EQ(neg["segments"][3]["expected_dma_addr"], "0x1e0003000");
  EXPECT_EQ(neg["segments"][3]["foreign"], true);
  EXPECT_EQ(neg["line_map"][0], std::string(64, 'M'));

  const json& stale = doc["results"][2];
  EXPECT_EQ(stale["diagnosis"], "stale-line");
  EXPECT_FALSE(stale.contains("displacement"));
  EXPECT_EQ(stale["failed_iteration"], 2);
  EXPECT_EQ(stale["mismatching_lines"], 3);

  const json& pos = doc["results"][3];
  EXPECT_EQ(pos["displacement"].get<int64_t>(), 0x1000);
  EXPECT_EQ(pos["displacement_hex"], "+0x1000");
  EXPECT_EQ(pos["segments"][0]["bounced"], true);

  EXPECT_EQ(doc["results"][4]["verdict"], "error");
}

TEST(ReportResultsJson, KeysInDocumentedOrder) {
  const auto doc = nlohmann::ordered_json::parse(
      RenderResultsJson(testing::SampleResults(), testing::SampleRun()));
  std::string keys;
  for (const auto& [k, v] : doc["results"][1].items()) keys += k + " ";
  EXPECT_EQ(keys,
            "board fixture verdict diagnosis detail mismatching_lines lines_checked displacement "
            "displacement_hex iterations failed_iteration segments line_map ");
}

// A PV block failure says which side of the I/O it is on; other results carry no io_path.
TEST(ReportResultsJson, APvBlockFailureNamesItsIoPath) {
  std::vector<v1::FixtureResult> results = testing::SampleResults();
  results[1].set_io_path(v1::IO_PATH_READ);
  const json doc = json::parse(RenderResultsJson(results, testing::SampleRun()));
  EXPECT_EQ(doc["results"][1]["io_path"], "read");
  EXPECT_FALSE(doc["results"][0].contains("io_path"));
}

// Every record names what each board booted, so a result can be traced to its kernel build.
TEST(ReportResultsJson, BoardsNameTheirKernelAndHypervisor) {
  RunInfo run = testing::SampleRun();
  run.software.push_back({"qemu-xen-src", "Linux debian/6.1.192-3 (tree /t, commit 0123456789ab)",
                          "Xen /x (sha256 0011223344556677)"});
  const auto doc = nlohmann::ordered_json::parse(RenderResultsJson({}, run));
  std::string keys;
  for (const auto& [k, v] : doc.items()) keys += k + " ";
  EXPECT_EQ(keys, "seed farm boards results ");
  ASSERT_EQ(doc["boards"].size(), 1u);
  EXPECT_EQ(doc["boards"][0]["name"], "qemu-xen-src");
  EXPECT_EQ(doc["boards"][0]["kernel"], "Linux debian/6.1.192-3 (tree /t, commit 0123456789ab)");
  EXPECT_EQ(doc["boards"][0]["hypervisor"], "Xen /x (sha256 0011223344556677)");
}

TEST(ReportResultsJson, ByteIdenticalAcrossRenders) {
  const std::string a = RenderResultsJson(testing::SampleResults(), testing::SampleRun());
  const std::string b = RenderResultsJson(testing::SampleResults(), testing::SampleRun());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.back(), '\n');
}

TEST(ReportResultsJson, ExtremeDisplacement) {
  auto r = testing::Result("b", "f", v1::VERDICT_FAIL);
  r.set_diagnosis(v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  r.set_displacement(INT64_MIN);
  const json doc = json::parse(RenderResultsJson({r}, testing::SampleRun()));
  EXPECT_EQ(doc["results"][0]["displacement"].get<int64_t>(), INT64_MIN);
  EXPECT_EQ(doc["results"][0]["displacement_hex"], "-0x8000000000000000");
}

TEST(ReportResultsJson, WritesFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("dmahil_results_" + std::to_string(::getpid()) + ".json");
  WriteResultsJson(path, testing::SampleResults(), testing::SampleRun());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), RenderResultsJson(testing::SampleResults(), testing::SampleRun()));
  std::filesystem::remove(path);
  EXPECT_THROW(WriteResultsJson("/nonexistent-dir/x.json", {}, testing::SampleRun()),
               std::runtime_error);
}

}  // namespace
}  // namespace dmahil::report
