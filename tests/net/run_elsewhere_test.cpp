#include "raftfl/net/run_elsewhere.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <functional>
#include <stdexcept>
#include <thread>

#include "raftfl/net/reactor.hpp"

namespace raftfl::net {
namespace {

// The other thread is a second reactor, as the storage thread is; the awaiting coroutine
// runs on the io_context of the test's thread.
class RunElsewhereTest : public ::testing::Test {
 protected:
  void SetUp() override { elsewhere_.start(); }
  void TearDown() override {
    elsewhere_.stop();
    elsewhere_.join();
  }

  // Runs `body` as a coroutine on `home_` until it finishes; rethrows what it threw.
  void run(std::function<asio::awaitable<void>()> body) {
    std::exception_ptr failure;
    asio::co_spawn(home_, body(), [&](std::exception_ptr e) { failure = e; });
    home_.run();
    if (failure) std::rethrow_exception(failure);
  }

  std::function<void(std::function<void()>)> to_elsewhere() {
    return [this](std::function<void()> task) { asio::post(elsewhere_.context(), std::move(task)); };
  }

  asio::io_context home_;
  Reactor elsewhere_;
};

TEST_F(RunElsewhereTest, TheJobRunsOnTheOtherThreadAndTheCoroutineResumesAtHome) {
  const auto home_thread = std::this_thread::get_id();
  std::thread::id job_thread;
  std::thread::id resumed_on;
  int result = 0;
  run([&]() -> asio::awaitable<void> {
    auto job = [&] {
      job_thread = std::this_thread::get_id();
      return 42;
    };
    auto submit = to_elsewhere();
    asio::any_io_executor home = home_.get_executor();
    result = co_await run_elsewhere(submit, home, job);
    resumed_on = std::this_thread::get_id();
  });
  EXPECT_EQ(result, 42);
  EXPECT_NE(job_thread, home_thread);
  EXPECT_EQ(resumed_on, home_thread);
}

TEST_F(RunElsewhereTest, AVoidJobCompletes) {
  bool ran = false;
  bool resumed = false;
  run([&]() -> asio::awaitable<void> {
    auto job = [&] { ran = true; };
    auto submit = to_elsewhere();
    asio::any_io_executor home = home_.get_executor();
    co_await run_elsewhere(submit, home, job);
    resumed = true;
  });
  EXPECT_TRUE(ran);
  EXPECT_TRUE(resumed);
}

TEST_F(RunElsewhereTest, TheJobsExceptionIsRethrownAtHome) {
  std::string caught;
  run([&]() -> asio::awaitable<void> {
    auto job = []() -> int { throw std::runtime_error("disk on fire"); };
    auto submit = to_elsewhere();
    asio::any_io_executor home = home_.get_executor();
    try {
      (void)co_await run_elsewhere(submit, home, job);
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
  });
  EXPECT_EQ(caught, "disk on fire");
}

}  // namespace
}  // namespace raftfl::net
