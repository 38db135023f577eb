#pragma once

// What every multi-process test needs: a fresh directory per test and the tail of each
// node's log for the failure message.
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "admin_client.hpp"

#include "local_cluster.hpp"

namespace raftfl::app::testing {

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

}  // namespace raftfl::app::testing
