#pragma once

// The training threads (docs/ARCHITECTURE.md, "Threads"): LibTorch work runs here, never on a
// reactor, so that a 100 ms SGD step cannot delay a Raft heartbeat or an exchange.
// Jobs run in submission order when the pool has one thread (a worker's model is only
// ever touched by one job at a time, by construction of the round loop).

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace raftfl::train {

class TrainingPool {
 public:
  explicit TrainingPool(std::size_t threads, std::string name = "train");
  // Runs the jobs already queued, then joins.
  ~TrainingPool();
  TrainingPool(const TrainingPool&) = delete;
  TrainingPool& operator=(const TrainingPool&) = delete;

  // `job` runs on a pool thread. It must not throw: wrap it and hand the error back (the
  // node's awaitable wrapper does).
  void submit(std::function<void()> job);
  std::size_t threads() const { return threads_.size(); }

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace raftfl::train
