// raftfl: the command line.
#include <CLI/CLI.hpp>

#include <sstream>

#include "commands.hpp"
#include "node_command.hpp"

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
  auto* put = app.add_subcommand("put", "set KEY to VALUE through the leader, exactly once even when retried");
  put->add_option("--endpoint", endpoint, "admin endpoints HOST:PORT[,HOST:PORT...]; tried in turn until the leader acknowledges")
      ->required();
  put->add_option("key", key)->required();
  put->add_option("value", value)->required();
  bool stale = false;
  auto* get = app.add_subcommand("get", "read KEY, linearizably: the leader confirms its commit index first");
  get->add_option("--endpoint", endpoint, "a node's admin endpoint, HOST:PORT")->required();
  get->add_option("key", key)->required();
  get->add_flag("--stale", stale, "read the node's own applied state without asking the leader (may be behind)");

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

  DemoOptions demo;
  auto* demo_cmd = app.add_subcommand("demo", "train together on a local cluster of node processes (loopback)");
  demo_cmd->add_option("--nodes", demo.nodes, "node processes")->check(CLI::Range(2, 64))->capture_default_str();
  demo_cmd->add_option("--rounds", demo.rounds, "gossip rounds")->check(CLI::Range(1, 1000000))->capture_default_str();
  demo_cmd->add_option("--kill-leader-at", demo.kill_leader_at, "SIGKILL the leader after this round (0: never)")
      ->check(CLI::Range(0, 1000000))->capture_default_str();
  demo_cmd->add_option("--restart-after", demo.restart_after_s,
                       "seconds until the killed node is started again from its data directory, as a supervisor "
                       "would (0: never)")
      ->check(CLI::Range(0.0, 3600.0))->capture_default_str();
  demo_cmd->add_option("--model", demo.model, "cnn or mlp")->check(CLI::IsMember({"cnn", "mlp"}))->capture_default_str();
  demo_cmd->add_option("--local-steps", demo.local_steps, "SGD steps per round")->check(CLI::Range(1, 100000))->capture_default_str();
  demo_cmd->add_option("--consensus-rounds", demo.consensus_rounds,
                       "final rounds without local steps that exchange whole models (pairwise averaging to consensus)")
      ->check(CLI::Range(0, 1000000))->capture_default_str();
  demo_cmd->add_option("--batch-size", demo.batch_size, "SGD batch size")->check(CLI::Range(1, 65536))->capture_default_str();
  demo_cmd->add_option("--lr", demo.learning_rate, "learning rate")->check(CLI::Range(0.0, 100.0))->capture_default_str();
  demo_cmd->add_option("--momentum", demo.momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999))->capture_default_str();
  demo_cmd->add_option("--alpha", demo.alpha, "Dirichlet alpha of the non-IID split (0: IID)")
      ->check(CLI::Range(0.0, 1e6))->capture_default_str();
  demo_cmd->add_option("--sparsifier", demo.sparsifier, "random-k, top-k or dense")
      ->check(CLI::IsMember({"random-k", "top-k", "dense"}))->capture_default_str();
  demo_cmd->add_option("--density", demo.density, "fraction of coordinates exchanged")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  demo_cmd->add_option("--encoding", demo.encoding, "fp32 or bf16 values on the wire")
      ->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  demo_cmd->add_option("--train-subset", demo.train_subset, "use the first N training images (0: all 60,000)")->capture_default_str();
  demo_cmd->add_option("--eval-every", demo.eval_every, "rounds between test evaluations")->check(CLI::Range(0, 1000000))->capture_default_str();
  demo_cmd->add_option("--eval-samples", demo.eval_samples, "test images per evaluation")->check(CLI::Range(1, 10000))->capture_default_str();
  demo_cmd->add_option("--exchange-timeout-ms", demo.exchange_timeout_ms, "how long a worker waits for its peer's model")
      ->check(CLI::Range(1, 3600000))->capture_default_str();
  demo_cmd->add_option("--seed", demo.seed, "partition and model seed")->capture_default_str();
  demo_cmd->add_option("--dataset-dir", demo.dataset_dir, "where the Fashion-MNIST .gz files are")->capture_default_str();
  demo_cmd->add_option("--transport", demo.transport, "tcp or zmq")->check(CLI::IsMember({"tcp", "zmq"}))->capture_default_str();
  demo_cmd->add_option("--timeout", demo.timeout_s, "give up after this many seconds")->check(CLI::Range(1.0, 1e6))->capture_default_str();
  demo_cmd->add_flag("--json", demo.json, "end with one JSON summary line");
  demo_cmd->add_option("--dir", demo.work_dir, "working directory for configs, data and logs (default: a new one under /tmp)");
  demo_cmd->add_flag("--keep", demo.keep, "keep the working directory afterwards");

  BenchTtaOptions tta;
  tta.base.nodes = 8;
  tta.base.rounds = 300;
  tta.base.local_steps = 2;
  tta.base.consensus_rounds = 0;  // each algorithm's own models, without a consensus phase
  tta.base.eval_every = 10;
  tta.base.eval_samples = 1000;
  tta.base.timeout_s = 7200;
  auto* bench_tta = bench_cmd->add_subcommand("tta", "time to accuracy of each exchange algorithm, same cluster and seeds");
  bench_tta->add_option("--algorithms", tta.algorithms, "comma-separated: random-k:DENSITY, top-k:DENSITY, dense, all-reduce")
      ->capture_default_str();
  bench_tta->add_option("--nodes", tta.base.nodes, "node processes")->check(CLI::Range(2, 64))->capture_default_str();
  bench_tta->add_option("--rounds", tta.base.rounds, "round budget per algorithm")->check(CLI::Range(1, 1000000))->capture_default_str();
  bench_tta->add_option("--model", tta.base.model, "cnn or mlp")->check(CLI::IsMember({"cnn", "mlp"}))->capture_default_str();
  bench_tta->add_option("--consensus-rounds", tta.base.consensus_rounds, "final rounds of whole-model averaging only")
      ->check(CLI::Range(0, 1000000))->capture_default_str();
  bench_tta->add_option("--local-steps", tta.base.local_steps, "SGD steps per round")->check(CLI::Range(1, 100000))->capture_default_str();
  bench_tta->add_option("--lr", tta.base.learning_rate, "learning rate")->check(CLI::Range(0.0, 100.0))->capture_default_str();
  bench_tta->add_option("--alpha", tta.base.alpha, "Dirichlet alpha (0: IID)")->check(CLI::Range(0.0, 1e6))->capture_default_str();
  bench_tta->add_option("--train-subset", tta.base.train_subset, "use the first N training images (0: all)")->capture_default_str();
  bench_tta->add_option("--eval-every", tta.base.eval_every, "rounds between evaluations")->check(CLI::Range(1, 1000000))->capture_default_str();
  bench_tta->add_option("--eval-samples", tta.base.eval_samples, "test images per evaluation")->check(CLI::Range(1, 10000))->capture_default_str();
  bench_tta->add_option("--seed", tta.base.seed, "partition and model seed")->capture_default_str();
  bench_tta->add_option("--dataset-dir", tta.base.dataset_dir, "where the Fashion-MNIST .gz files are")->capture_default_str();
  bench_tta->add_option("--csv", tta.csv, "accuracy curves: algorithm,round,seconds,bytes_sent,mean_accuracy_percent")->capture_default_str();
  bench_tta->add_option("--timeout", tta.base.timeout_s, "give up on an algorithm after this many seconds")->capture_default_str();
  bench_tta->add_flag("--json", tta.base.json, "one JSON object per algorithm after the table");
  bench_tta->add_option("--dir", tta.base.work_dir, "working directory (default: a new one under /tmp)");
  bench_tta->add_flag("--keep", tta.base.keep, "keep the working directory afterwards");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (node->parsed()) return run_node(config_file);
  if (status->parsed()) return run_status(endpoint, json);
  if (put->parsed()) return run_put(endpoint, key, value);
  if (get->parsed()) return run_get(endpoint, key, stale);
  if (demo_cmd->parsed()) return run_demo(demo);
  if (bench_tta->parsed()) return run_bench_tta(tta);
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
