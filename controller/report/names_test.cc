#include "controller/report/names.h"

#include <cstdint>

#include <gtest/gtest.h>

#include "common/fault_catalogue.h"

namespace dmahil::report {
namespace {

TEST(ReportNames, Diagnoses) {
  EXPECT_EQ(DiagnosisName(v1::DIAGNOSIS_STALE_LINE), "stale-line");
  EXPECT_EQ(DiagnosisName(v1::DIAGNOSIS_WRONG_BUS_ADDRESS), "wrong-bus-address");
  EXPECT_EQ(DiagnosisName(v1::DIAGNOSIS_STRAY_DMA), "stray-dma");
  EXPECT_EQ(DiagnosisName(v1::DIAGNOSIS_NEVER_LANDED), "never-landed");
  EXPECT_EQ(DiagnosisName(v1::DIAGNOSIS_TORN_LINE), "torn-line");
  EXPECT_EQ(DiagnosisName(v1::DIAGNOSIS_MISSING_MAINTENANCE), "missing-maintenance");
  EXPECT_EQ(DiagnosisName(v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE), "misaddressed-maintenance");
  EXPECT_EQ(DiagnosisName(v1::DIAGNOSIS_NONE), "none");
}

// Farm `expect` fields are checked against the catalogue's names (common/fault_catalogue.h):
// they must be the names the reports give.
TEST(ReportNames, DiagnosesAreTheCatalogueNames) {
  const google::protobuf::EnumDescriptor* d = v1::Diagnosis_descriptor();
  for (int i = 0; i < d->value_count(); ++i) {
    const auto value = static_cast<v1::Diagnosis>(d->value(i)->number());
    EXPECT_EQ(DiagnosisName(value), DiagnosisKebabName(value)) << d->value(i)->name();
  }
}

TEST(ReportNames, Verdicts) {
  EXPECT_EQ(VerdictName(v1::VERDICT_PASS), "pass");
  EXPECT_EQ(VerdictName(v1::VERDICT_FAIL), "fail");
  EXPECT_EQ(VerdictName(v1::VERDICT_ERROR), "error");
  EXPECT_EQ(VerdictName(v1::VERDICT_UNSPECIFIED), "error");
}

TEST(ReportNames, SignedHex) {
  EXPECT_EQ(SignedHex(0xc0000000LL), "+0xc0000000");
  EXPECT_EQ(SignedHex(-0x1000), "-0x1000");
  EXPECT_EQ(SignedHex(0), "+0x0");
  EXPECT_EQ(SignedHex(INT64_MIN), "-0x8000000000000000");
  EXPECT_EQ(SignedHex(INT64_MAX), "+0x7fffffffffffffff");
  EXPECT_EQ(Hex(0xC0000000), "0xc0000000");
}

}  // namespace
}  // namespace dmahil::report
