// impulse-client's durations (--job-limit 20m, --budget 10h, --period 1d).
#include "client/duration.h"

#include <gtest/gtest.h>

namespace impulse::client {
namespace {

TEST(DurationTest, ReadsUnitsAndSequences) {
  const std::pair<const char*, double> cases[] = {{"1200", 1200}, {"90s", 90},   {"20m", 1200},
                                                  {"10h", 36000}, {"1d", 86400}, {"1h30m", 5400},
                                                  {"0.5h", 1800}, {"0", 0}};
  for (const auto& [text, seconds] : cases) {
    auto parsed = ParseDurationS(text, "--job-limit");
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status().ToString();
    EXPECT_DOUBLE_EQ(*parsed, seconds) << text;
  }
}

TEST(DurationTest, RefusesWhatIsNotADurationNamingTheFlag) {
  for (const char* text : {"", "-5m", "20x", "m", "1h30", "1..5s", "10 m"}) {
    auto parsed = ParseDurationS(text, "--budget");
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(parsed.status().message().find("--budget"), std::string::npos) << text;
  }
}

TEST(DurationTest, FormatsWithTheLargestUnits) {
  EXPECT_EQ(FormatDurationS(1200), "20m");
  EXPECT_EQ(FormatDurationS(5400), "1h30m");
  EXPECT_EQ(FormatDurationS(86400), "1d");
  EXPECT_EQ(FormatDurationS(90061), "1d1h1m1s");
  EXPECT_EQ(FormatDurationS(0), "0s");
  EXPECT_EQ(FormatDurationS(0.5), "0.5s");
  for (double seconds : {45.0, 1200.0, 5400.0, 90061.0}) {
    EXPECT_DOUBLE_EQ(*ParseDurationS(FormatDurationS(seconds), "x"), seconds);
  }
}

}  // namespace
}  // namespace impulse::client
