#include <gtest/gtest.h>

#include "raftfl/train/lr_schedule.hpp"

namespace raftfl::train {
namespace {

TEST(LrSchedule, ConstantIsThePeakAfterTheWarmUp) {
  const LrSchedule s{LrScheduleKind::kConstant, 0.1, 4, 0.0};
  EXPECT_DOUBLE_EQ(learning_rate(s, 1, 100), 0.025);
  EXPECT_DOUBLE_EQ(learning_rate(s, 4, 100), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(s, 5, 100), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(s, 100, 100), 0.1);
}

TEST(LrSchedule, CosineFallsFromThePeakToTheFloorOnTheLastRound) {
  const LrSchedule s{LrScheduleKind::kCosine, 0.2, 10, 0.05};
  EXPECT_DOUBLE_EQ(learning_rate(s, 11, 110), 0.2);
  EXPECT_NEAR(learning_rate(s, 110, 110), 0.01, 1e-12);
  double previous = 1;
  for (std::uint64_t r = 11; r <= 110; ++r) {
    const double lr = learning_rate(s, r, 110);
    EXPECT_LE(lr, previous) << "round " << r;
    previous = lr;
  }
  // Half-way down the half cosine: the mean of peak and floor.
  EXPECT_NEAR(learning_rate(s, 60, 109), (0.2 + 0.01) / 2, 1e-12);
}

TEST(LrSchedule, StepDividesByTenAtHalfAndAtThreeQuarters) {
  const LrSchedule s{LrScheduleKind::kStep, 0.1, 0, 0.0};
  EXPECT_DOUBLE_EQ(learning_rate(s, 50, 100), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(s, 51, 100), 0.01);
  EXPECT_DOUBLE_EQ(learning_rate(s, 76, 100), 0.001);
}

TEST(LrSchedule, NamesRoundTrip) {
  for (auto kind : {LrScheduleKind::kConstant, LrScheduleKind::kCosine, LrScheduleKind::kStep})
    EXPECT_EQ(parse_lr_schedule(to_string(kind)), kind);
  EXPECT_FALSE(parse_lr_schedule("linear"));
}

}  // namespace
}  // namespace raftfl::train
