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

// Fail on bad options and missing data here, with the package's name, not in four node logs.
bool check_demo_options(const DemoOptions& o) {
  try {
    (void)train::load_fashion_mnist(o.dataset_dir, train::Split::kTest);
  } catch (const train::DatasetError& e) {
    std::fprintf(stderr, "raftfl: demo: %s\nraftfl: demo: install the Debian package dataset-fashion-mnist, or pass --dataset-dir\n",
                 e.what());
    return false;
  }
  if (o.consensus_rounds >= o.rounds) {
    std::fprintf(stderr, "raftfl: demo: --consensus-rounds %d must be less than --rounds %d\n", o.consensus_rounds, o.rounds);
    return false;
  }
  if (o.kill_leader_at > o.rounds) {
    std::fprintf(stderr, "raftfl: demo: --kill-leader-at %d is past --rounds %d\n", o.kill_leader_at, o.rounds);
    return false;
  }
  return true;
}

// What the demo reports at the end.
struct DemoResult {
  double seconds = 0;
  double final_accuracy = 0;  // percent, mean over the workers that finished
  int accuracy_count = 0;
  double bytes_sent = 0;
  std::uint64_t rss_total_kib = 0;
  std::uint64_t rss_max_kib = 0;
};

// One demo run: polls every node, prints the rounds as the leader's coordinator reports
// them, kills and restarts the leader when asked, and stops when every live worker is done.
class DemoRun {
 public:
  DemoRun(const DemoOptions& o, LocalCluster& cluster) : o_(o), cluster_(cluster) {}

  // kExitOk, or kExitFailure with failure() saying why.
  int watch() {
    for (;;) {
      if (seconds_since(started_) > o_.timeout_s) {
        failure_ = "no result after " + std::to_string(o_.timeout_s) + " s (--timeout)";
        return kExitFailure;
      }
      const auto leader = poll_nodes();
      if (!failure_.empty()) return kExitFailure;
      track_leader(leader);
      if (leader != 0) print_rounds(leader);
      if (kill_leader_now(leader)) continue;
      restart_when_due();
      if (finished()) return kExitOk;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }

  DemoResult result() {
    DemoResult r;
    r.seconds = seconds_since(started_);
    r.bytes_sent = bytes_before_kill_;
    double accuracy_sum = 0;
    for (int i = 1; i <= o_.nodes; ++i) {
      const auto id = static_cast<std::uint64_t>(i);
      r.rss_total_kib += peak_rss_kib_[id];
      r.rss_max_kib = std::max(r.rss_max_kib, peak_rss_kib_[id]);
      auto it = last_status_.find(id);
      if (it == last_status_.end() || !it->second.contains("worker")) continue;
      const auto& w = it->second["worker"];
      r.bytes_sent += w["bytes_sent"].get<double>();
      if (cluster_.running(id) && w["done"].get<bool>()) {
        accuracy_sum += w["final_accuracy"].get<double>();
        ++r.accuracy_count;
      }
    }
    r.final_accuracy = r.accuracy_count ? 100.0 * accuracy_sum / r.accuracy_count : 0.0;
    return r;
  }

  void print_summary(const DemoResult& r) const {
    std::printf("\nsummary: %d rounds in %.1f s; final test accuracy %.2f%% (mean over %d workers' own models, "
                "whole test set)\n",
                o_.rounds, r.seconds, r.final_accuracy, r.accuracy_count);
    std::printf("summary: leader changes %d", leader_changes_);
    if (!killed_.empty())
      std::printf(" (node %llu killed with SIGKILL after round %d%s; training went on under node %llu)",
                  static_cast<unsigned long long>(killed_.front()), o_.kill_leader_at,
                  restarted_ ? ", restarted later" : "", static_cast<unsigned long long>(leader_));
    std::printf("\nsummary: %s of model values sent; peak RSS %.0f MiB per node at most, %.0f MiB all nodes\n",
                human_bytes(r.bytes_sent).c_str(), static_cast<double>(r.rss_max_kib) / 1024,
                static_cast<double>(r.rss_total_kib) / 1024);
  }

  void print_json(const DemoResult& r, bool ok) const {
    JsonWriter w;
    w.begin_object();
    w.field("ok", ok).field("final_accuracy", r.final_accuracy).field("rounds", o_.rounds);
    w.field("leader_changes", leader_changes_).field("bytes_sent", static_cast<std::uint64_t>(r.bytes_sent));
    w.field("seconds", r.seconds).field("nodes", o_.nodes).field("model", o_.model).field("sparsifier", o_.sparsifier);
    w.field("density", o_.density);
    w.field("restarted", restarted_);
    w.key("killed").begin_array();
    for (auto id : killed_) w.value(id);
    w.end_array();
    w.field("peak_rss_mib_max", static_cast<double>(r.rss_max_kib) / 1024);
    w.field("peak_rss_mib_total", static_cast<double>(r.rss_total_kib) / 1024);
    w.end_object();
    std::printf("%s\n", w.str().c_str());
  }

  const std::string& failure() const { return failure_; }

 private:
  // Every live node's status: the leader's view for the rounds, each worker's own for
  // completion. Returns the leader seen, 0 for none; sets failure_ when a node died alone.
  std::uint64_t poll_nodes() {
    std::uint64_t leader = 0;
    for (int i = 1; i <= o_.nodes; ++i) {
      const auto id = static_cast<std::uint64_t>(i);
      if (!cluster_.running(id)) continue;
      if (auto exited = cluster_.wait_exit(id, std::chrono::milliseconds(0))) {
        failure_ = "node " + std::to_string(id) + " exited on its own (see " + cluster_.log_file(id).string() + ")";
        return 0;
      }
      peak_rss_kib_[id] = std::max(peak_rss_kib_[id], cluster_.peak_rss_kib(id));
      auto s = cluster_.status(id, std::chrono::milliseconds(1000));
      if (!s) continue;
      last_status_[id] = *s;
      if (s->value("role", "") == "leader") leader = id;
    }
    return leader;
  }

  void track_leader(std::uint64_t leader) {
    if (leader == 0 || leader == leader_) return;
    if (leader_ != 0) ++leader_changes_;
    std::printf("demo: node %llu is the %sleader and coordinator\n", static_cast<unsigned long long>(leader),
                leader_ != 0 ? "new " : "");
    std::fflush(stdout);
    leader_ = leader;
  }

  // Prints each round once, when all its reports are in or two newer rounds exist.
  void print_rounds(std::uint64_t leader) {
    if (!last_status_[leader].contains("coordinator")) return;
    const auto& coordinator = last_status_[leader]["coordinator"];
    std::map<std::uint64_t, json> rounds;
    for (const auto& r : coordinator["rounds"]) rounds[r["round"].get<std::uint64_t>()] = r;
    const auto newest = rounds.empty() ? 0 : rounds.rbegin()->first;
    for (auto& [round, r] : rounds) {
      if (round <= printed_) continue;
      const bool complete = r["reports"].get<std::uint64_t>() >= r["expected"].get<std::uint64_t>() &&
                            r["expected"].get<std::uint64_t>() > 0;
      if (!complete && round + 2 > newest) break;  // wait for the missing reports a little longer
      for (auto missed = printed_ + 1; missed < round; ++missed)
        std::printf("round %4llu  (its reports went to the previous leader)\n", static_cast<unsigned long long>(missed));
      const double accuracy = r["mean_accuracy"].get<double>();
      char acc[32] = "      -";
      if (accuracy >= 0) std::snprintf(acc, sizeof(acc), "%6.2f%%", accuracy * 100);
      std::printf("round %4llu  leader %llu  loss %.4f  accuracy %s  bytes %10s  time %.2f s%s%s\n",
                  static_cast<unsigned long long>(round), static_cast<unsigned long long>(leader),
                  r["mean_loss"].get<double>(), acc, human_bytes(r["bytes_sent"].get<double>()).c_str(),
                  r["round_seconds"].get<double>(), complete ? "" : "  (some reports missing)",
                  r["timeouts"].get<std::uint64_t>() > 0 ? "  (peer timeouts)" : "");
      std::fflush(stdout);
      printed_ = round;
    }
  }

  bool kill_leader_now(std::uint64_t leader) {
    if (o_.kill_leader_at <= 0 || !killed_.empty() || leader == 0 ||
        printed_ < static_cast<std::uint64_t>(o_.kill_leader_at))
      return false;
    std::printf("demo: killing the leader, node %llu, with SIGKILL after round %llu\n",
                static_cast<unsigned long long>(leader), static_cast<unsigned long long>(printed_));
    std::fflush(stdout);
    cluster_.kill(leader, SIGKILL);
    killed_.push_back(leader);
    // Its counters start again from 0 if it comes back: keep what it had sent.
    if (last_status_[leader].contains("worker"))
      bytes_before_kill_ += last_status_[leader]["worker"]["bytes_sent"].get<double>();
    last_status_.erase(leader);
    killed_at_ = Clock::now();
    return true;
  }

  bool restart_pending() const { return !killed_.empty() && !restarted_ && o_.restart_after_s > 0; }

  void restart_when_due() {
    if (!restart_pending() || seconds_since(killed_at_) < o_.restart_after_s) return;
    std::printf("demo: restarting node %llu from its data directory (Raft log and model checkpoint)\n",
                static_cast<unsigned long long>(killed_.front()));
    std::fflush(stdout);
    cluster_.start(killed_.front());
    restarted_ = true;
  }

  // Every live worker has its final accuracy, and no restart is still to come.
  bool finished() const {
    int live_workers = 0;
    for (int i = 1; i <= o_.nodes; ++i) {
      const auto id = static_cast<std::uint64_t>(i);
      if (!cluster_.running(id)) continue;
      ++live_workers;
      auto it = last_status_.find(id);
      if (it == last_status_.end() || !it->second.contains("worker") || !it->second["worker"]["done"].get<bool>())
        return false;
    }
    return live_workers > 0 && !restart_pending();
  }

  const DemoOptions& o_;
  LocalCluster& cluster_;
  const Clock::time_point started_ = Clock::now();
  std::map<std::uint64_t, json> last_status_;  // per node, the latest answer
  std::map<std::uint64_t, std::uint64_t> peak_rss_kib_;
  std::uint64_t leader_ = 0;
  int leader_changes_ = 0;
  std::uint64_t printed_ = 0;  // the last round printed
  std::vector<std::uint64_t> killed_;
  Clock::time_point killed_at_;
  bool restarted_ = false;
  double bytes_before_kill_ = 0;
  std::string failure_;
};

}  // namespace

int run_demo(const DemoOptions& o) {
  if (!check_demo_options(o)) return kExitUsage;
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
  LocalCluster cluster(co);
  DemoRun run(o, cluster);
  cluster.start_all();
  std::printf("demo: %d nodes on loopback (%s), %s on non-IID Fashion-MNIST (Dirichlet alpha %.2f), %s at density %g, "
              "%d rounds of %d local steps; logs in %s (%s)\n",
              o.nodes, o.transport.c_str(), o.model.c_str(), o.alpha, o.sparsifier.c_str(), o.density, o.rounds,
              o.local_steps, dir.path.c_str(), o.keep ? "kept" : "removed at the end unless the run fails; --keep keeps them");
  std::fflush(stdout);

  const int rc = run.watch();
  const auto result = run.result();
  cluster.stop_all(std::chrono::seconds(5));
  if (rc != kExitOk) {
    dir.remove = false;
    std::fprintf(stderr, "raftfl: demo: %s; node logs kept in %s\n", run.failure().c_str(), dir.path.c_str());
  } else {
    run.print_summary(result);
  }
  if (o.json) run.print_json(result, rc == kExitOk);
  std::fflush(stdout);
  return rc;
}

}  // namespace raftfl::app
