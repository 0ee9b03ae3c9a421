#include "common/host_port.h"

#include <gtest/gtest.h>

namespace dmahil {
namespace {

TEST(HostPort, ParsesNamesAddressesAndBracketedIpv6) {
  const HostPort a = ParseHostPort("127.0.0.1:7000");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 7000);
  const HostPort b = ParseHostPort("[::1]:65535");
  EXPECT_EQ(b.host, "::1");
  EXPECT_EQ(b.port, 65535);
  EXPECT_EQ(ParseHostPort("board-7.lab:1").host, "board-7.lab");
}

TEST(HostPort, EveryMalformedEndpointSaysWhy) {
  EXPECT_EQ(HostPortProblem(""), "is empty");
  EXPECT_EQ(HostPortProblem("localhost"), "has no :port");
  EXPECT_EQ(HostPortProblem("::1:80"), "has an IPv6 host without [brackets]");
  EXPECT_EQ(HostPortProblem("[::1]80"), "is not [ipv6]:port");
  EXPECT_EQ(HostPortProblem(":80"), "has no host");
  EXPECT_EQ(HostPortProblem("h:8x"), "has a port that is not a number");
  EXPECT_EQ(HostPortProblem("h:"), "has a port that is not a number");
  EXPECT_EQ(HostPortProblem("h:0"), "has a port outside 1..65535");
  EXPECT_EQ(HostPortProblem("h:65536"), "has a port outside 1..65535");
  EXPECT_EQ(HostPortProblem("h:123456"), "has a port that is not a number");
  EXPECT_THROW(ParseHostPort("h:0"), std::invalid_argument);
  try {
    ParseHostPort("nohost");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "nohost: has no :port");
  }
}

}  // namespace
}  // namespace dmahil
