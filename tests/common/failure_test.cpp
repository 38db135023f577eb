#include "raftfl/common/failure.hpp"

#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>

namespace raftfl::common {
namespace {

std::exception_ptr thrown(auto value) {
  try {
    throw value;
  } catch (...) {
    return std::current_exception();
  }
}

TEST(Failure, DescribesAnyException) {
  EXPECT_EQ(describe(thrown(std::runtime_error("disk full"))), "disk full");
  EXPECT_EQ(describe(thrown(42)), "an exception that is not a std::exception");
  EXPECT_EQ(describe(nullptr), "no exception");
}

TEST(Failure, LogsOneErrorLine) {
  ::testing::internal::CaptureStderr();
  log_failure("worker", "stopped", thrown(std::runtime_error("disk full")));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "raftfl error worker: stopped: disk full\n");
}

TEST(FailureDeathTest, ExitsWithStatusOneAfterTheLine) {
  EXPECT_EXIT(exit_on_failure("node", "fatal", thrown(std::logic_error("commit beyond last index"))),
              ::testing::ExitedWithCode(1), "raftfl error node: fatal: commit beyond last index");
}

}  // namespace
}  // namespace raftfl::common
