// raftfl: the command line.
#include <CLI/CLI.hpp>

#include <sstream>

#include "commands.hpp"

namespace {

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    std::size_t used = 0;
    const int v = std::stoi(item, &used);
    if (used != item.size() || v < 1 || v > 4096) throw std::invalid_argument(item);
    out.push_back(v);
  }
  if (out.empty()) throw std::invalid_argument(text);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace raftfl::app;
  CLI::App app{"raftfl: fault-tolerant decentralized federated learning (RAFT-GossipFL)"};
  app.require_subcommand(1);

  std::string config_file;
  auto* node = app.add_subcommand("node", "run one node of a cluster");
  node->add_option("--config", config_file, "the node's TOML configuration file")->required();

  std::string endpoint;
  bool json = false;
  auto* status = app.add_subcommand("status", "show a node's role, term, log and members");
  status->add_option("--endpoint", endpoint, "the node's admin endpoint, HOST:PORT")->required();
  status->add_flag("--json", json, "print the status as one JSON object");

  std::string key, value;
  auto* put = app.add_subcommand("put", "replicate KEY=VALUE through the leader at --endpoint");
  put->add_option("--endpoint", endpoint, "the leader's admin endpoint, HOST:PORT")->required();
  put->add_option("key", key)->required();
  put->add_option("value", value)->required();
  auto* get = app.add_subcommand("get", "read KEY from the applied state of the node at --endpoint");
  get->add_option("--endpoint", endpoint, "a node's admin endpoint, HOST:PORT")->required();
  get->add_option("key", key)->required();

  BenchRaftOptions bench;
  std::string clients = "1,4,16,64";
  auto* bench_cmd = app.add_subcommand("bench", "benchmarks");
  bench_cmd->require_subcommand(1);
  auto* bench_raft = bench_cmd->add_subcommand("raft", "3 node processes on loopback: ops/s and commit latency");
  bench_raft->add_option("--clients", clients, "comma-separated client counts")->capture_default_str();
  bench_raft->add_option("--seconds", bench.seconds, "seconds per client count")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  bench_raft->add_option("--storage", bench.storage, "memory or disk")->check(CLI::IsMember({"memory", "disk"}))->capture_default_str();
  bench_raft->add_option("--transport", bench.transport, "tcp or zmq")->check(CLI::IsMember({"tcp", "zmq"}))->capture_default_str();
  bench_raft->add_option("--payload", bench.payload_bytes, "bytes per proposal")->check(CLI::Range(0, 1 << 20))->capture_default_str();
  bench_raft->add_option("--poll-budget-us", bench.poll_budget_us, "reactor spin before sleeping, microseconds")
      ->check(CLI::Range(0, 1000000))->capture_default_str();
  bench_raft->add_flag("--json", bench.json, "one JSON object per line");
  bench_raft->add_flag("--failover", bench.failover, "kill the leader with SIGKILL under load, repeatedly");
  bench_raft->add_option("--kills", bench.kills, "leader kills in --failover")->check(CLI::Range(1, 1000))->capture_default_str();
  bench_raft->add_option("--failover-clients", bench.failover_clients, "background clients during --failover")
      ->check(CLI::Range(1, 4096))->capture_default_str();
  bench_raft->add_option("--dir", bench.work_dir, "working directory for configs, data and logs (default: a new one under /tmp)");
  bench_raft->add_flag("--keep", bench.keep, "keep the working directory afterwards");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (node->parsed()) return run_node(config_file);
  if (status->parsed()) return run_status(endpoint, json);
  if (put->parsed()) return run_put(endpoint, key, value);
  if (get->parsed()) return run_get(endpoint, key);
  if (bench_raft->parsed()) {
    try {
      bench.clients = parse_list(clients);
    } catch (const std::exception&) {
      std::fprintf(stderr, "raftfl: bench raft: --clients '%s': expected a comma-separated list of 1..4096\n", clients.c_str());
      return kExitUsage;
    }
    return run_bench_raft(bench);
  }
  return kExitUsage;
}
