#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace raftfl::app {

// Exit codes of every command: 0 success, 1 failure at run time, 2 bad usage or config.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

int run_status(const std::string& endpoint, bool json);
int run_put(const std::string& endpoint, const std::string& key, const std::string& value);
// Linearizable (through the leader's ReadIndex) unless `stale`: then the node's own state.
int run_get(const std::string& endpoint, const std::string& key, bool stale);
// `raftfl member ACTION ARGS...`: list, add ID RAFT ADMIN, promote ID, demote ID, remove ID.
int run_member(const std::string& action, const std::vector<std::string>& args, const std::string& endpoint, bool json);

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

struct DemoOptions {
  int nodes = 4;
  int rounds = 250;
  int kill_leader_at = 0;  // 0: no kill
  double restart_after_s = 5;  // the killed node comes back after this long; 0: never
  std::string model = "cnn";
  int local_steps = 2;
  int consensus_rounds = 10;
  int batch_size = 32;
  double learning_rate = 0.05;
  double momentum = 0.9;
  double alpha = 0.5;  // Dirichlet; 0: IID
  std::string sparsifier = "random-k";
  double density = 0.1;
  std::string encoding = "fp32";
  bool all_reduce = false;
  std::size_t train_subset = 0;
  int eval_every = 25;
  std::size_t eval_samples = 500;
  std::int64_t exchange_timeout_ms = 5000;
  std::uint64_t seed = 1;
  std::string dataset_dir = "/usr/share/datasets/fashion-mnist";
  std::string transport = "tcp";
  double timeout_s = 1800;
  bool json = false;
  std::string work_dir;
  bool keep = false;
  // --chaos SEED: 3 voters and 5 learners (joined) under a seeded schedule of kills,
  // pauses, joins and leaves (chaos_schedule.hpp).
  bool chaos = false;
  std::uint64_t chaos_seed = 0;
};
int run_demo(const DemoOptions& options);

// `raftfl bench tta`: each algorithm trains the same cluster from the same seeds.
struct BenchTtaOptions {
  DemoOptions base;  // nodes, model, rounds, steps, seeds, ...; sparsifier settings are per algorithm
  // name:density items, e.g. "random-k:0.01,random-k:0.1,top-k:0.01,dense,all-reduce"
  std::string algorithms = "random-k:0.01,random-k:0.1,top-k:0.01,dense,all-reduce";
  std::string csv = "tta.csv";
};
int run_bench_tta(const BenchTtaOptions& options);

}  // namespace raftfl::app
