// Test helpers for the sim tests: load a shipped board file without the validator.
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include "dmahil/v1/board.pb.h"

namespace dmahil::sim::testing {

inline v1::Board LoadShippedBoard(const std::string& name) {
  const char* root = std::getenv("DMAHIL_SOURCE_DIR");
  const std::string path = std::string(root ? root : ".") + "/boards/" + name + ".textproto";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  v1::Board board;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text.str(), &board)) << path;
  return board;
}

}  // namespace dmahil::sim::testing
