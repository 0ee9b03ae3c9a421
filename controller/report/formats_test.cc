#include "controller/report/formats.h"

#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

namespace dmahil::report {
namespace {

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ReportFormats, EveryFormatIsWrittenWithItsRendererAndNamesAreUnique) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("dmahil-formats-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  v1::FixtureResult r;
  r.set_board("b");
  r.set_fixture("f");
  r.set_verdict(v1::VERDICT_FAIL);
  r.set_diagnosis(v1::DIAGNOSIS_STALE_LINE);
  const std::vector<v1::FixtureResult> results = {r};
  const RunInfo run{42, "farm"};
  const std::vector<std::filesystem::path> written = WriteReports(dir, results, run);
  ASSERT_EQ(written.size(), ReportFormats().size());
  std::set<std::string_view> names, files;
  for (size_t i = 0; i < written.size(); ++i) {
    const ReportFormat& f = ReportFormats()[i];
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_TRUE(files.insert(f.file).second) << f.file;
    EXPECT_EQ(written[i], dir / f.file);
    EXPECT_EQ(Slurp(written[i]), f.render(results, run)) << f.name;
    EXPECT_NE(Slurp(written[i]).find("stale-line"), std::string::npos) << f.name;
  }
  std::filesystem::remove_all(dir);
}

TEST(ReportFormats, AnUnwritableFolderIsAnErrorNamingTheFile) {
  try {
    WriteReports("/proc/dmahil-no-such-folder", {}, RunInfo{1, "farm"});
    FAIL() << "wrote into /proc";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/dmahil-no-such-folder/junit.xml"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dmahil::report
