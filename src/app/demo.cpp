// `raftfl demo`: the local cluster that trains together (README, "The demo").
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "commands.hpp"
#include "local_cluster.hpp"
#include "training_cluster.hpp"
#include "raftfl/common/json_writer.hpp"
#include "raftfl/train/idx_reader.hpp"
#include "work_dir.hpp"

namespace raftfl::app {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string human_bytes(double bytes) {
  char buf[32];
  if (bytes >= 1e9) std::snprintf(buf, sizeof(buf), "%.2f GB", bytes / 1e9);
  else if (bytes >= 1e6) std::snprintf(buf, sizeof(buf), "%.2f MB", bytes / 1e6);
  else if (bytes >= 1e3) std::snprintf(buf, sizeof(buf), "%.1f kB", bytes / 1e3);
  else std::snprintf(buf, sizeof(buf), "%.0f B", bytes);
  return buf;
}

// The command line offers the configuration's own names, so an unknown one is a bug.
template <typename Kind>
Kind kind_of(std::string_view name) {
  std::optional<Kind> kind = node::kind_from_string<Kind>(name);
  if (!kind) throw std::invalid_argument("unknown name \"" + std::string(name) + "\"");
  return *kind;
}

}  // namespace

void configure_training_node(node::NodeConfig& c, const DemoOptions& o) {
  c.cluster_id = 7;
  c.training.enabled = true;
  c.training.dataset_dir = o.dataset_dir;
  c.training.model = kind_of<node::ModelKind>(o.model);
  c.training.rounds = static_cast<std::uint64_t>(o.rounds);
  c.training.local_steps = o.local_steps;
  c.training.consensus_rounds = static_cast<std::uint64_t>(o.consensus_rounds);
  c.training.batch_size = o.batch_size;
  c.training.learning_rate = o.learning_rate;
  c.training.momentum = o.momentum;
  c.training.partition = o.alpha > 0 ? node::PartitionKind::kDirichlet : node::PartitionKind::kIid;
  c.training.dirichlet_alpha = o.alpha > 0 ? o.alpha : 0.5;
  c.training.partition_seed = o.seed;
  c.training.model_seed = o.seed;
  c.training.train_subset = o.train_subset;
  c.training.eval_every = o.eval_every;
  c.training.eval_samples = o.eval_samples;
  c.gossip.sparsifier = kind_of<node::SparsifierKind>(o.sparsifier);
  c.gossip.density = o.density;
  c.gossip.encoding = kind_of<node::EncodingKind>(o.encoding);
  c.gossip.exchange_timeout = std::chrono::milliseconds(o.exchange_timeout_ms);
  // Training makes control entries rare: snapshot often enough that a restarted node
  // catches up from one.
  c.snapshot_every = 1000;
  c.gossip.all_reduce = o.all_reduce;
}

namespace {

struct Tracker {
  std::map<std::uint64_t, json> last_status;  // per node, the latest answer
  std::map<std::uint64_t, std::uint64_t> peak_rss_kib;
  std::set<std::uint64_t> leaders_seen;
  std::uint64_t leader = 0;
  int leader_changes = 0;
  std::uint64_t printed = 0;  // the last round printed
};

}  // namespace

int run_demo(const DemoOptions& o) {
  // Fail on missing data here, with the package's name, not in four node logs.
  try {
    (void)train::load_fashion_mnist(o.dataset_dir, train::Split::kTest);
  } catch (const train::DatasetError& e) {
    std::fprintf(stderr, "raftfl: demo: %s\nraftfl: demo: install the Debian package dataset-fashion-mnist, or pass --dataset-dir\n",
                 e.what());
    return kExitUsage;
  }
  if (o.consensus_rounds >= o.rounds) {
    std::fprintf(stderr, "raftfl: demo: --consensus-rounds %d must be less than --rounds %d\n", o.consensus_rounds, o.rounds);
    return kExitUsage;
  }
  if (o.kill_leader_at > o.rounds) {
    std::fprintf(stderr, "raftfl: demo: --kill-leader-at %d is past --rounds %d\n", o.kill_leader_at, o.rounds);
    return kExitUsage;
  }
  WorkDir dir;
  if (!dir.make(o.work_dir, "raftfl-demo", o.keep)) {
    std::perror("raftfl: demo: mkdtemp");
    return kExitFailure;
  }
  LocalClusterOptions co;
  co.nodes = o.nodes;
  co.dir = dir.path;
  co.binary = self_binary();
  co.transport = o.transport == "zmq" ? node::TransportKind::kZmq : node::TransportKind::kTcp;
  co.storage = node::StorageKind::kDisk;
  co.customize = [&o](node::NodeConfig& c) { configure_training_node(c, o); };
  ::signal(SIGPIPE, SIG_IGN);
  const auto started = Clock::now();
  LocalCluster cluster(co);
  cluster.start_all();
  std::printf("demo: %d nodes on loopback (%s), %s on non-IID Fashion-MNIST (Dirichlet alpha %.2f), %s at density %g, "
              "%d rounds of %d local steps; logs in %s\n",
              o.nodes, o.transport.c_str(), o.model.c_str(), o.alpha, o.sparsifier.c_str(), o.density, o.rounds,
              o.local_steps, dir.path.c_str());
  std::fflush(stdout);

  Tracker t;
  std::vector<std::uint64_t> killed;
  Clock::time_point killed_at;
  bool restarted = false;
  double bytes_before_kill = 0;
  int rc = kExitOk;
  std::string failure;
  auto live = [&](std::uint64_t id) { return cluster.running(id); };
  for (;;) {
    if (seconds_since(started) > o.timeout_s) {
      failure = "no result after " + std::to_string(o.timeout_s) + " s (--timeout)";
      rc = kExitFailure;
      break;
    }
    // Poll every node: the leader's view for the rounds, each worker's own for completion.
    std::uint64_t leader = 0;
    for (int i = 1; i <= o.nodes; ++i) {
      const auto id = static_cast<std::uint64_t>(i);
      if (!live(id)) continue;
      if (auto exited = cluster.wait_exit(id, std::chrono::milliseconds(0))) {
        failure = "node " + std::to_string(id) + " exited on its own (see " + cluster.log_file(id).string() + ")";
        rc = kExitFailure;
        break;
      }
      t.peak_rss_kib[id] = std::max(t.peak_rss_kib[id], cluster.peak_rss_kib(id));
      auto s = cluster.status(id, std::chrono::milliseconds(1000));
      if (!s) continue;
      t.last_status[id] = *s;
      if (s->value("role", "") == "leader") leader = id;
    }
    if (rc != kExitOk) break;
    if (leader != 0 && leader != t.leader) {
      if (t.leader != 0) {
        ++t.leader_changes;
        std::printf("demo: node %llu is the new leader and coordinator\n", static_cast<unsigned long long>(leader));
      } else {
        std::printf("demo: node %llu is the leader and coordinator\n", static_cast<unsigned long long>(leader));
      }
      std::fflush(stdout);
      t.leader = leader;
    }
    if (leader != 0 && t.last_status[leader].contains("coordinator")) {
      const auto& coordinator = t.last_status[leader]["coordinator"];
      std::map<std::uint64_t, json> rounds;
      for (const auto& r : coordinator["rounds"]) rounds[r["round"].get<std::uint64_t>()] = r;
      const auto newest = rounds.empty() ? 0 : rounds.rbegin()->first;
      for (auto& [round, r] : rounds) {
        if (round <= t.printed) continue;
        const bool complete = r["reports"].get<std::uint64_t>() >= r["expected"].get<std::uint64_t>() &&
                              r["expected"].get<std::uint64_t>() > 0;
        if (!complete && round + 2 > newest) break;  // wait for the missing reports a little longer
        for (auto missed = t.printed + 1; missed < round; ++missed)
          std::printf("round %4llu  (its reports went to the previous leader)\n", static_cast<unsigned long long>(missed));
        const double accuracy = r["mean_accuracy"].get<double>();
        char acc[32] = "      -";
        if (accuracy >= 0) std::snprintf(acc, sizeof(acc), "%6.2f%%", accuracy * 100);
        std::printf("round %4llu  leader %llu  loss %.4f  accuracy %s  bytes %10s  time %.2f s%s%s\n",
                    static_cast<unsigned long long>(round), static_cast<unsigned long long>(leader),
                    r["mean_loss"].get<double>(), acc, human_bytes(r["bytes_sent"].get<double>()).c_str(),
                    r["round_seconds"].get<double>(),
                    complete ? "" : "  (some reports missing)",
                    r["timeouts"].get<std::uint64_t>() > 0 ? "  (peer timeouts)" : "");
        std::fflush(stdout);
        t.printed = round;
      }
    }
    if (o.kill_leader_at > 0 && killed.empty() && leader != 0 && t.printed >= static_cast<std::uint64_t>(o.kill_leader_at)) {
      std::printf("demo: killing the leader, node %llu, with SIGKILL after round %llu\n",
                  static_cast<unsigned long long>(leader), static_cast<unsigned long long>(t.printed));
      std::fflush(stdout);
      cluster.kill(leader, SIGKILL);
      killed.push_back(leader);
      // Its counters start again from 0 if it comes back: keep what it had sent.
      if (t.last_status[leader].contains("worker"))
        bytes_before_kill += t.last_status[leader]["worker"]["bytes_sent"].get<double>();
      t.last_status.erase(leader);
      killed_at = Clock::now();
      continue;
    }
    if (!killed.empty() && !restarted && o.restart_after_s > 0 && seconds_since(killed_at) >= o.restart_after_s) {
      std::printf("demo: restarting node %llu from its data directory (Raft log and model checkpoint)\n",
                  static_cast<unsigned long long>(killed.front()));
      std::fflush(stdout);
      cluster.start(killed.front());
      restarted = true;
    }
    // Done when every live worker has its final accuracy.
    bool all_done = true;
    int live_workers = 0;
    for (int i = 1; i <= o.nodes; ++i) {
      const auto id = static_cast<std::uint64_t>(i);
      if (!live(id)) continue;
      ++live_workers;
      auto it = t.last_status.find(id);
      if (it == t.last_status.end() || !it->second.contains("worker") || !it->second["worker"]["done"].get<bool>())
        all_done = false;
    }
    const bool restart_pending = !killed.empty() && !restarted && o.restart_after_s > 0;
    if (live_workers > 0 && all_done && !restart_pending) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const double seconds = seconds_since(started);

  double accuracy_sum = 0;
  int accuracy_count = 0;
  double bytes_sent = bytes_before_kill;
  std::uint64_t rss_total_kib = 0, rss_max_kib = 0;
  for (int i = 1; i <= o.nodes; ++i) {
    const auto id = static_cast<std::uint64_t>(i);
    rss_total_kib += t.peak_rss_kib[id];
    rss_max_kib = std::max(rss_max_kib, t.peak_rss_kib[id]);
    auto it = t.last_status.find(id);
    if (it == t.last_status.end() || !it->second.contains("worker")) continue;
    const auto& w = it->second["worker"];
    bytes_sent += w["bytes_sent"].get<double>();
    if (live(id) && w["done"].get<bool>()) {
      accuracy_sum += w["final_accuracy"].get<double>();
      ++accuracy_count;
    }
  }
  const double final_accuracy = accuracy_count ? 100.0 * accuracy_sum / accuracy_count : 0.0;
  cluster.stop_all(std::chrono::seconds(5));

  if (rc != kExitOk) {
    dir.remove = false;
    std::fprintf(stderr, "raftfl: demo: %s; node logs kept in %s\n", failure.c_str(), dir.path.c_str());
  } else {
    std::printf("\nsummary: %d rounds in %.1f s; final test accuracy %.2f%% (mean over %d workers' own models, "
                "whole test set)\n",
                o.rounds, seconds, final_accuracy, accuracy_count);
    std::printf("summary: leader changes %d", t.leader_changes);
    if (!killed.empty())
      std::printf(" (node %llu killed with SIGKILL after round %d%s; training went on under node %llu)",
                  static_cast<unsigned long long>(killed.front()), o.kill_leader_at,
                  restarted ? ", restarted later" : "", static_cast<unsigned long long>(t.leader));
    std::printf("\nsummary: %s of model values sent; peak RSS %.0f MiB per node at most, %.0f MiB all nodes\n",
                human_bytes(bytes_sent).c_str(), static_cast<double>(rss_max_kib) / 1024,
                static_cast<double>(rss_total_kib) / 1024);
  }
  if (o.json) {
    JsonWriter w;
    w.begin_object();
    w.field("ok", rc == kExitOk).field("final_accuracy", final_accuracy).field("rounds", o.rounds);
    w.field("leader_changes", t.leader_changes).field("bytes_sent", static_cast<std::uint64_t>(bytes_sent));
    w.field("seconds", seconds).field("nodes", o.nodes).field("model", o.model).field("sparsifier", o.sparsifier);
    w.field("density", o.density);
    w.field("restarted", restarted);
    w.key("killed").begin_array();
    for (auto id : killed) w.value(id);
    w.end_array();
    w.field("peak_rss_mib_max", static_cast<double>(rss_max_kib) / 1024);
    w.field("peak_rss_mib_total", static_cast<double>(rss_total_kib) / 1024);
    w.end_object();
    std::printf("%s\n", w.str().c_str());
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace raftfl::app
