#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace raftfl::app {

// Exit codes of every command: 0 success, 1 failure at run time, 2 bad usage or config.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

int run_node(const std::string& config_file);
int run_status(const std::string& endpoint, bool json);
int run_put(const std::string& endpoint, const std::string& key, const std::string& value);
int run_get(const std::string& endpoint, const std::string& key);

struct BenchRaftOptions {
  std::vector<int> clients{1, 4, 16, 64};
  double seconds = 5;
  std::string storage = "memory";
  std::string transport = "tcp";
  bool json = false;
  bool failover = false;
  int kills = 20;
  int failover_clients = 16;
  std::size_t payload_bytes = 256;
  std::int64_t poll_budget_us = 0;
  std::string work_dir;  // empty: a fresh directory under /tmp, removed afterwards
  bool keep = false;
};
int run_bench_raft(const BenchRaftOptions& options);

}  // namespace raftfl::app
