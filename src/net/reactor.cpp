#include "raftfl/net/reactor.hpp"

#include <pthread.h>
#include <sched.h>

#include <asio/executor_work_guard.hpp>

#include <cstdio>
#include <cstring>

namespace raftfl::net {

Reactor::Reactor(ReactorOptions options) : options_(std::move(options)) {}

Reactor::~Reactor() {
  stop();
  join();
  drain();
}

void Reactor::start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), options_.name.substr(0, 15).c_str());
    loop();
  });
}

void Reactor::run_here() { loop(); }

void Reactor::stop() {
  stop_requested_.store(true, std::memory_order_release);
  context_.stop();
}

void Reactor::join() {
  if (thread_.joinable()) thread_.join();
}

void Reactor::drain(std::chrono::milliseconds limit) {
  // Without a work guard, run_for returns as soon as no operation is outstanding.
  context_.restart();
  context_.run_for(limit);
}

void Reactor::loop() {
  if (options_.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(options_.cpu, &set);
    if (const int error = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); error != 0)
      std::fprintf(stderr, "raftfl: %s: cannot pin to cpu %d (%s); running unpinned\n", options_.name.c_str(),
                   options_.cpu, std::strerror(error));
  }
  // The loop runs until stop(), not until it runs out of work: connections and timers
  // come and go.
  auto guard = asio::make_work_guard(context_);
  if (options_.poll_budget.count() == 0) {
    context_.run();
    return;
  }
  using Clock = std::chrono::steady_clock;
  auto last_work = Clock::now();
  while (!stop_requested_.load(std::memory_order_acquire)) {
    const auto n = context_.poll();
    if (context_.stopped()) break;
    if (n > 0) {
      last_work = Clock::now();
      continue;
    }
    if (Clock::now() - last_work < options_.poll_budget) {
      // A peer process may share this CPU and need it to send what we wait for: without
      // the yield, such a round trip costs a whole budget.
      sched_yield();
      continue;
    }
    // Budget spent with nothing to do: sleep in the kernel until the next completion.
    context_.run_one();
    last_work = Clock::now();
  }
}

}  // namespace raftfl::net
