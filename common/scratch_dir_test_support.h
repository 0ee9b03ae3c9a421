// Tests only: a GoogleTest fixture giving each test its own scratch folder
// (<tmp>/dmahil_<prefix>_<test name>_<pid>), emptied before and removed after the test.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace dmahil::testing {

class ScratchDirTest : public ::testing::Test {
 protected:
  /// prefix: names the suite in the folder name, e.g. "config".
  explicit ScratchDirTest(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("dmahil_" + prefix_ + "_" + info->name() + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  /// Writes `text` to dir_/rel (creating its folders); returns the path.
  std::filesystem::path Write(const std::string& rel, const std::string& text) {
    const std::filesystem::path p = dir_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p;
  }

  std::filesystem::path dir_;

 private:
  std::string prefix_;
};

}  // namespace dmahil::testing
