#pragma once

#include <asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace raftfl::net {

struct ReactorOptions {
  // Spin on the ready queue this long after the last handler before sleeping in the
  // kernel (0: sleep at once). Measured on a 2-vCPU VM (perf/bench_reactor_pingpong.cpp):
  // with Asio's io_uring backend spinning is slower than sleeping, because every
  // completion for a running thread costs the sender a cross-CPU interrupt; it pays only
  // where completions arrive without one. Off by default.
  std::chrono::microseconds poll_budget{0};
  // Pin the reactor thread to this CPU (-1: let the scheduler choose).
  int cpu = -1;
  std::string name = "reactor";
};

// One io_context on its own thread (docs/ARCHITECTURE.md, "Threads"). Everything that runs on a
// reactor is single-threaded; other threads hand it work with asio::post.
class Reactor {
 public:
  explicit Reactor(ReactorOptions options = {});
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  asio::io_context& context() { return context_; }
  const ReactorOptions& options() const { return options_; }

  // Runs the loop on a new thread until stop().
  void start();
  // Runs the loop on the calling thread until stop(); for programs whose main thread is
  // the reactor.
  void run_here();
  // Safe from any thread; returns at once.
  void stop();
  // Waits for the thread started by start().
  void join();
  // After the loop stopped: runs what is left (the completions of operations that closing
  // sockets and cancelling timers aborted) until nothing is, or `limit` passes. Asio needs
  // those completions to run before the io_context goes: an operation destroyed with the
  // context instead outlives the services it belongs to. Owners call it after closing
  // their I/O objects and before destroying them; the destructor calls it too.
  void drain(std::chrono::milliseconds limit = std::chrono::milliseconds(2000));

 private:
  void loop();

  ReactorOptions options_;
  asio::io_context context_{1};  // concurrency hint 1: one thread, no internal locking contention
  std::thread thread_;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace raftfl::net
