#pragma once

// What every multi-process test needs: a fresh directory per test and the tail of each
// node's log for the failure message.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin_client.hpp"

#include "local_cluster.hpp"

namespace raftfl::app::testing {

// Polls `pred` every 100 ms until it holds (true) or `limit` passes (false).
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

inline std::filesystem::path test_dir(const std::string& prefix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  auto dir = std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(::getpid())) /
             (std::string(info->test_suite_name()) + "." + info->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string log_of(LocalCluster& c, std::size_t tail_bytes = 4000) {
  std::string out;
  for (int id = 1; id <= c.size(); ++id) {
    std::ifstream in(c.log_file(static_cast<std::uint64_t>(id)));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > tail_bytes) text = "..." + text.substr(text.size() - tail_bytes);
    out += "---- node " + std::to_string(id) + " ----\n" + text;
  }
  return out;
}

using namespace std::chrono_literals;

// Writes key=value through whichever node leads; true once acknowledged (applied on the
// leader). Follows "not leader" hints; gives up after `limit`. Asks nodes 1 to `last_node`
// (every node when 0).
inline bool put(LocalCluster& c, const std::string& key, const std::string& value, std::chrono::milliseconds limit = 10s,
                int last_node = 0) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  const int last = last_node == 0 ? c.size() : last_node;
  while (std::chrono::steady_clock::now() < deadline) {
    for (int id = 1; id <= last; ++id) {
      if (!c.running(static_cast<std::uint64_t>(id))) continue;
      try {
        const auto reply = nlohmann::json::parse(
            admin_request(c.config(static_cast<std::uint64_t>(id)).admin, "put " + key + " " + value, 3s));
        if (reply.value("ok", false)) return true;
      } catch (const std::exception&) {
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

inline std::optional<std::string> get(LocalCluster& c, std::uint64_t id, const std::string& key) {
  const auto reply = nlohmann::json::parse(admin_request(c.config(id).admin, "get " + key, 3s));
  if (!reply.value("found", false)) return std::nullopt;
  return reply.at("value").get<std::string>();
}

// Waits until every running node has applied the same state as the others.
inline bool converged(LocalCluster& c, std::chrono::milliseconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    std::set<std::pair<std::uint64_t, std::string>> states;
    bool all = true;
    for (int id = 1; id <= c.size(); ++id) {
      if (!c.running(static_cast<std::uint64_t>(id))) continue;
      auto s = c.status(static_cast<std::uint64_t>(id));
      if (!s) {
        all = false;
        break;
      }
      states.insert({s->at("applied").get<std::uint64_t>(), s->at("kv_digest").get<std::string>()});
    }
    if (all && states.size() == 1) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// Clients writing distinct keys through whichever node acknowledges, as `raftfl put` does,
// asking nodes 1 to `last_node` (every node when 0). Each acknowledgement is kept with
// its time, so that a test can find the longest stretch without one.
class Writers {
 public:
  struct Acknowledged {
    std::string key;
    std::chrono::steady_clock::time_point at;
  };

  Writers(LocalCluster& c, int count, int last_node = 0) {
    for (int t = 0; t < count; ++t) {
      threads_.emplace_back([this, &c, t, last_node] {
        for (int n = 0; !stop_; ++n) {
          const std::string key = "w" + std::to_string(t) + "-" + std::to_string(n);
          if (!put(c, key, "v", 5s, last_node)) continue;
          std::lock_guard lock(mutex_);
          acknowledged_.push_back({key, std::chrono::steady_clock::now()});
        }
      });
    }
  }
  ~Writers() { stop(); }
  Writers(const Writers&) = delete;
  Writers& operator=(const Writers&) = delete;

  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::vector<Acknowledged> acknowledged() {
    std::lock_guard lock(mutex_);
    return acknowledged_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<Acknowledged> acknowledged_;
  std::vector<std::thread> threads_;
};

inline std::string exit_of(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "exit code " + std::to_string(WEXITSTATUS(status));
}

}  // namespace raftfl::app::testing
