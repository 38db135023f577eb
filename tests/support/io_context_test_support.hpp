#pragma once

#include <asio/io_context.hpp>

#include <chrono>
#include <functional>

namespace raftfl::test {

// Runs `context` in 1 ms slices until `done` holds; false if `limit` passed first.
inline bool run_until(asio::io_context& context, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    context.run_for(std::chrono::milliseconds(1));
    context.restart();
  }
  return true;
}

// After the I/O objects on `context` are closed or destroyed: lets their aborted
// operations complete (as net::Reactor::drain does), so that none is destroyed with the
// context after the services it belongs to.
inline void drain(asio::io_context& context) {
  context.restart();
  context.run_for(std::chrono::seconds(2));
}

}  // namespace raftfl::test
