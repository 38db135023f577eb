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

using raftfl::app::BenchRaftOptions;
using raftfl::app::BenchTtaOptions;
using raftfl::app::DemoOptions;

// The options of the node and of the client commands.
struct ClientArgs {
  std::string config_file;
  raftfl::app::NodeStart start;
  std::string endpoint;
  bool json = false;
  std::string key;
  std::string value;
  bool stale = false;
  std::string member_action;
  std::vector<std::string> member_args;
};

struct ClientCommands {
  CLI::App* node;
  CLI::App* status;
  CLI::App* put;
  CLI::App* get;
  CLI::App* member;
};

ClientCommands add_client_commands(CLI::App& app, ClientArgs& a) {
  ClientCommands c{};
  c.node = app.add_subcommand("node", "run one node of a cluster");
  c.node->add_option("--config", a.config_file, "the node's TOML configuration file")->required();
  auto* join = c.node->add_option("--join", a.start.join,
                                  "a member's admin endpoint, HOST:PORT: a node with an empty data directory joins "
                                  "that running cluster as a learner instead of starting a new one");
  c.node
      ->add_flag("--bootstrap", a.start.bootstrap,
                 "found a new cluster of this node alone (its file lists no [[peers]]), to be grown with --join")
      ->excludes(join);

  c.status = app.add_subcommand("status", "show a node's role, term, log and members");
  c.status->add_option("--endpoint", a.endpoint, "the node's admin endpoint, HOST:PORT")->required();
  c.status->add_flag("--json", a.json, "print the status as one JSON object");

  c.put = app.add_subcommand("put", "set KEY to VALUE through the leader, exactly once even when retried");
  c.put->add_option("--endpoint", a.endpoint,
                    "admin endpoints HOST:PORT[,HOST:PORT...]; tried in turn until the leader acknowledges")
      ->required();
  c.put->add_option("key", a.key)->required();
  c.put->add_option("value", a.value)->required();

  c.get = app.add_subcommand("get", "read KEY, linearizably: the leader confirms its commit index first");
  c.get->add_option("--endpoint", a.endpoint, "a node's admin endpoint, HOST:PORT")->required();
  c.get->add_option("key", a.key)->required();
  c.get->add_flag("--stale", a.stale, "read the node's own applied state without asking the leader (may be behind)");

  c.member = app.add_subcommand("member", "list or change the cluster's members (through the leader)");
  c.member->add_option("action", a.member_action, "list | add ID RAFT_HOST:PORT ADMIN_HOST:PORT | promote ID | demote ID | remove ID")
      ->required();
  c.member->add_option("args", a.member_args, "the action's arguments");
  c.member->add_option("--endpoint", a.endpoint, "a member's admin endpoint, HOST:PORT")->required();
  c.member->add_flag("--json", a.json, "print the reply as one JSON object");
  return c;
}

CLI::App* add_bench_raft(CLI::App& bench_cmd, BenchRaftOptions& bench, std::string& clients) {
  auto* b = bench_cmd.add_subcommand("raft", "3 node processes on loopback: ops/s and commit latency");
  b->add_option("--clients", clients, "comma-separated client counts")->capture_default_str();
  b->add_option("--seconds", bench.seconds, "seconds per client count")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  b->add_option("--storage", bench.storage, "memory or disk")->check(CLI::IsMember({"memory", "disk"}))->capture_default_str();
  b->add_option("--transport", bench.transport, "tcp or zmq")->check(CLI::IsMember({"tcp", "zmq"}))->capture_default_str();
  b->add_option("--payload", bench.payload_bytes, "bytes per proposal")->check(CLI::Range(0, 1 << 20))->capture_default_str();
  b->add_option("--poll-budget-us", bench.poll_budget_us, "reactor spin before sleeping, microseconds")
      ->check(CLI::Range(0, 1000000))->capture_default_str();
  b->add_flag("--json", bench.json, "one JSON object per line");
  b->add_flag("--failover", bench.failover, "kill the leader with SIGKILL under load, repeatedly");
  b->add_option("--kills", bench.kills, "leader kills in --failover")->check(CLI::Range(1, 1000))->capture_default_str();
  b->add_option("--failover-clients", bench.failover_clients, "background clients during --failover")
      ->check(CLI::Range(1, 4096))->capture_default_str();
  b->add_option("--dir", bench.work_dir, "working directory for configs, data and logs (default: a new one under /tmp)");
  b->add_flag("--keep", bench.keep, "keep the working directory afterwards");
  return b;
}

// The flags that `demo` and `bench tta` share: one training cluster's shape and recipe.
void add_training_flags(CLI::App* cmd, DemoOptions& o, int min_eval_every) {
  cmd->add_option("--nodes", o.nodes, "node processes")->check(CLI::Range(2, 64))->capture_default_str();
  cmd->add_option("--rounds", o.rounds, "gossip rounds")->check(CLI::Range(1, 1000000))->capture_default_str();
  cmd->add_option("--model", o.model, "cnn or mlp")->check(CLI::IsMember({"cnn", "mlp"}))->capture_default_str();
  cmd->add_option("--local-steps", o.local_steps, "SGD steps per round")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--consensus-rounds", o.consensus_rounds,
                  "final rounds without local steps that exchange whole models (pairwise averaging to consensus)")
      ->check(CLI::Range(0, 1000000))->capture_default_str();
  cmd->add_option("--lr", o.learning_rate, "learning rate")->check(CLI::Range(0.0, 100.0))->capture_default_str();
  cmd->add_option("--alpha", o.alpha, "Dirichlet alpha of the non-IID split (0: IID)")
      ->check(CLI::Range(0.0, 1e6))->capture_default_str();
  cmd->add_option("--train-subset", o.train_subset, "use the first N training images (0: all 60,000)")->capture_default_str();
  cmd->add_option("--eval-every", o.eval_every, "rounds between test evaluations")
      ->check(CLI::Range(min_eval_every, 1000000))->capture_default_str();
  cmd->add_option("--eval-samples", o.eval_samples, "test images per evaluation")->check(CLI::Range(1, 10000))->capture_default_str();
  cmd->add_option("--seed", o.seed, "partition and model seed")->capture_default_str();
  cmd->add_option("--dataset-dir", o.dataset_dir, "where the Fashion-MNIST .gz files are")->capture_default_str();
  cmd->add_option("--timeout", o.timeout_s, "give up after this many seconds")->check(CLI::Range(1.0, 1e6))->capture_default_str();
  cmd->add_option("--dir", o.work_dir, "working directory for configs, data and logs (default: a new one under /tmp)");
  cmd->add_flag("--keep", o.keep, "keep the working directory afterwards");
}

CLI::App* add_demo(CLI::App& app, DemoOptions& demo) {
  auto* d = app.add_subcommand("demo", "train together on a local cluster of node processes (loopback)");
  add_training_flags(d, demo, 0);
  d->add_option("--kill-leader-at", demo.kill_leader_at, "SIGKILL the leader after this round (0: never)")
      ->check(CLI::Range(0, 1000000))->capture_default_str();
  d->add_option("--restart-after", demo.restart_after_s,
                "seconds until the killed node is started again from its data directory, as a supervisor would (0: never)")
      ->check(CLI::Range(0.0, 3600.0))->capture_default_str();
  d->add_option("--batch-size", demo.batch_size, "SGD batch size")->check(CLI::Range(1, 65536))->capture_default_str();
  d->add_option("--momentum", demo.momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999))->capture_default_str();
  d->add_option("--sparsifier", demo.sparsifier, "random-k, top-k or dense")
      ->check(CLI::IsMember({"random-k", "top-k", "dense"}))->capture_default_str();
  d->add_option("--density", demo.density, "fraction of coordinates exchanged")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  d->add_option("--encoding", demo.encoding, "fp32 or bf16 values on the wire")
      ->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  d->add_option("--exchange-timeout-ms", demo.exchange_timeout_ms, "how long a worker waits for its peer's model")
      ->check(CLI::Range(1, 3600000))->capture_default_str();
  d->add_option("--transport", demo.transport, "tcp or zmq")->check(CLI::IsMember({"tcp", "zmq"}))->capture_default_str();
  d->add_flag("--json", demo.json, "end with one JSON summary line");
  d->add_option_function<std::uint64_t>(
       "--chaos",
       [&demo](const std::uint64_t& seed) {
         demo.chaos = true;
         demo.chaos_seed = seed;
       },
       "SEED: 8 nodes (3 voters, 5 learners) under a seeded schedule of kills, pauses, joins and leaves")
      ->excludes("--kill-leader-at");
  return d;
}

CLI::App* add_bench_tta(CLI::App& bench_cmd, BenchTtaOptions& tta) {
  tta.base.nodes = 8;
  tta.base.rounds = 300;
  tta.base.local_steps = 2;
  tta.base.consensus_rounds = 0;  // each algorithm's own models, without a consensus phase
  tta.base.eval_every = 10;
  tta.base.eval_samples = 1000;
  tta.base.timeout_s = 7200;
  auto* b = bench_cmd.add_subcommand("tta", "time to accuracy of each exchange algorithm, same cluster and seeds");
  b->add_option("--algorithms", tta.algorithms, "comma-separated: random-k:DENSITY, top-k:DENSITY, dense, all-reduce")
      ->capture_default_str();
  add_training_flags(b, tta.base, 1);
  b->add_option("--csv", tta.csv, "accuracy curves: algorithm,round,seconds,bytes_sent,mean_accuracy_percent")
      ->capture_default_str();
  b->add_flag("--json", tta.base.json, "one JSON object per algorithm after the table");
  return b;
}

int run_bench_raft_command(BenchRaftOptions& bench, const std::string& clients) {
  try {
    bench.clients = parse_list(clients);
  } catch (const std::exception&) {
    std::fprintf(stderr, "raftfl: bench raft: --clients '%s': expected a comma-separated list of 1..4096\n", clients.c_str());
    return raftfl::app::kExitUsage;
  }
  return raftfl::app::run_bench_raft(bench);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace raftfl::app;
  CLI::App app{"raftfl: fault-tolerant decentralized federated learning (RAFT-GossipFL)"};
  app.require_subcommand(1);
  ClientArgs client;
  const auto commands = add_client_commands(app, client);
  DemoOptions demo;
  auto* demo_cmd = add_demo(app, demo);
  auto* bench_cmd = app.add_subcommand("bench", "benchmarks");
  bench_cmd->require_subcommand(1);
  BenchRaftOptions bench;
  std::string clients = "1,4,16,64";
  auto* bench_raft = add_bench_raft(*bench_cmd, bench, clients);
  BenchTtaOptions tta;
  auto* bench_tta = add_bench_tta(*bench_cmd, tta);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (commands.node->parsed()) return run_node(client.config_file, client.start);
  if (commands.status->parsed()) return run_status(client.endpoint, client.json);
  if (commands.put->parsed()) return run_put(client.endpoint, client.key, client.value);
  if (commands.get->parsed()) return run_get(client.endpoint, client.key, client.stale);
  if (commands.member->parsed()) return run_member(client.member_action, client.member_args, client.endpoint, client.json);
  if (demo_cmd->parsed()) {
    if (demo.chaos && demo_cmd->count("--nodes") == 0) demo.nodes = 8;
    return run_demo(demo);
  }
  if (bench_tta->parsed()) return run_bench_tta(tta);
  if (bench_raft->parsed()) return run_bench_raft_command(bench, clients);
  return kExitUsage;
}
