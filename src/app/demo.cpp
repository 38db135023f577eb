// `raftfl demo`: the local cluster that trains together (README, "The demo").
#include <signal.h>
#include <sys/wait.h>
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

#include "admin_client.hpp"
#include "chaos_schedule.hpp"
#include "commands.hpp"
#include "local_cluster.hpp"
#include "training_cluster.hpp"
#include "raftfl/common/json_writer.hpp"
#include "raftfl/common/splitmix64.hpp"
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

// A chaos run: nodes 1-3 are the founding voters, the others join as learners; the two
// nodes after them join mid-run.
constexpr int kChaosVoters = 3;
constexpr int kChaosJoiners = 2;
constexpr auto kChaosFailureTimeout = std::chrono::milliseconds(1000);
constexpr auto kStragglerLimit = std::chrono::seconds(120);

ChaosShape chaos_shape(const DemoOptions& o) {
  ChaosShape shape;
  shape.rounds = static_cast<std::uint64_t>(o.rounds);
  shape.quiet_tail = static_cast<std::uint64_t>(o.consensus_rounds);
  shape.first_joiner = static_cast<std::uint64_t>(o.nodes) + 1;
  shape.failure_timeout_s = std::chrono::duration<double>(kChaosFailureTimeout).count();
  return shape;
}

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
  if (o.chaos) {
    if (o.nodes < kChaosVoters + 2) {
      std::fprintf(stderr, "raftfl: demo: --chaos needs --nodes %d or more (%d voters and learners to fail)\n",
                   kChaosVoters + 2, kChaosVoters);
      return false;
    }
    try {
      (void)chaos_schedule(o.chaos_seed, chaos_shape(o));
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "raftfl: demo: %s (--rounds %d)\n", e.what(), o.rounds);
      return false;
    }
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
  // Chaos runs.
  bool topologies_agree = true;
  std::uint64_t topology_rounds_checked = 0;
  std::string topology_disagreement;
};

// One demo run: polls every node, prints the rounds as the leader's coordinator reports
// them, kills and restarts the leader when asked, and stops when every live worker is done.
class DemoRun {
 public:
  DemoRun(const DemoOptions& o, LocalCluster& cluster, std::vector<ChaosEvent> events, int total_nodes)
      : o_(o), cluster_(cluster), total_nodes_(total_nodes), pick_(o.chaos_seed) {
    for (auto& e : events) events_.push_back({e, false});
  }

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
      run_chaos(leader);
      if (finished()) return kExitOk;
      if (stragglers_timed_out()) return kExitFailure;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }

  DemoResult result() {
    DemoResult r;
    r.seconds = seconds_since(started_);
    r.bytes_sent = bytes_before_kill_;
    double accuracy_sum = 0;
    for (int i = 1; i <= total_nodes_; ++i) {
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

  // Every live node holds the same plan for every round it still keeps (the last 64):
  // no round was planned twice with different pairs.
  void check_topologies(DemoResult& r) {
    const auto last = static_cast<std::uint64_t>(o_.rounds);
    const std::uint64_t first = last > 63 ? last - 63 : 1;
    for (std::uint64_t round = first; round <= last; ++round) {
      std::optional<json> reference;
      std::uint64_t reference_node = 0;
      for (int i = 1; i <= total_nodes_; ++i) {
        const auto id = static_cast<std::uint64_t>(i);
        if (!cluster_.running(id)) continue;
        json t;
        try {
          t = json::parse(admin_request(cluster_.config(id).admin, "topology " + std::to_string(round),
                                        std::chrono::seconds(2)));
        } catch (const std::exception& e) {
          t = json{{"error", e.what()}};
        }
        if (!reference) {
          reference = t;
          reference_node = id;
        } else if (t != *reference && r.topologies_agree) {
          r.topologies_agree = false;
          r.topology_disagreement = "round " + std::to_string(round) + ": node " + std::to_string(id) + " holds " +
                                    t.dump() + ", node " + std::to_string(reference_node) + " " + reference->dump();
        }
      }
      ++r.topology_rounds_checked;
    }
  }

  void print_chaos_summary(const DemoResult& r) const {
    std::printf("summary: chaos seed %llu: %d kills, %d pauses, %d joins, %d leaves; %llu rounds with peer timeouts; "
                "returning and joining nodes exchanged within %lld rounds of starting; voters replaced within %.0f ms "
                "at most; the last %llu rounds' plans %s on every node\n",
                static_cast<unsigned long long>(o_.chaos_seed), kills_, pauses_, joins_, leaves_,
                static_cast<unsigned long long>(rounds_with_timeouts_), static_cast<long long>(max_rounds_to_rejoin()), max_replacement_ms(),
                static_cast<unsigned long long>(r.topology_rounds_checked), r.topologies_agree ? "identical" : "DIFFER");
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
    if (o_.chaos) {
      w.field("chaos_seed", o_.chaos_seed).field("kills", kills_).field("pauses", pauses_);
      w.field("joins", joins_).field("leaves", leaves_);
      w.field("rounds_with_timeouts", rounds_with_timeouts_);
      w.field("max_rounds_to_rejoin", max_rounds_to_rejoin());
      w.key("rounds_to_rejoin").begin_object();
      for (const auto& [id, rounds] : rounds_to_rejoin_) w.field(std::to_string(id), rounds);
      w.end_object();
      w.field("max_voter_replacement_ms", max_replacement_ms());
      w.field("topologies_identical", r.topologies_agree);
      w.field("topology_rounds_checked", r.topology_rounds_checked);
    }
    w.end_object();
    std::printf("%s\n", w.str().c_str());
  }

  const std::string& failure() const { return failure_; }

 private:
  // Every live node's status: the leader's view for the rounds, each worker's own for
  // completion. Returns the leader seen, 0 for none; sets failure_ when a node died alone.
  std::uint64_t poll_nodes() {
    std::uint64_t leader = 0;
    for (int i = 1; i <= total_nodes_; ++i) {
      const auto id = static_cast<std::uint64_t>(i);
      if (!cluster_.running(id) || paused_.contains(id)) continue;
      if (auto exited = cluster_.wait_exit(id, std::chrono::milliseconds(0))) {
        if (leaving_.erase(id) != 0) {
          note_left(id, *exited);
          continue;
        }
        failure_ = "node " + std::to_string(id) + " exited on its own (see " + cluster_.log_file(id).string() + ")";
        return 0;
      }
      peak_rss_kib_[id] = std::max(peak_rss_kib_[id], cluster_.peak_rss_kib(id));
      auto s = cluster_.status(id, std::chrono::milliseconds(1000));
      if (!s) continue;
      last_status_[id] = *s;
      if (s->value("role", "") == "leader") leader = id;
      note_rejoin(id, *s);
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
      if (r["timeouts"].get<std::uint64_t>() > 0) ++rounds_with_timeouts_;
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
    keep_bytes_of(leader);
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
    if (events_run_ < events_.size() || !restarts_.empty() || !resumes_.empty() || !leaving_.empty()) return false;
    int live_workers = 0;
    for (int i = 1; i <= total_nodes_; ++i) {
      const auto id = static_cast<std::uint64_t>(i);
      if (!cluster_.running(id)) continue;
      ++live_workers;
      auto it = last_status_.find(id);
      if (it == last_status_.end() || !it->second.contains("worker") || !it->second["worker"]["done"].get<bool>())
        return false;
    }
    return live_workers > 0 && !restart_pending();
  }

  // Once the last round is printed, every live worker finishes within kStragglerLimit, or
  // the run fails naming those that did not (a worker that never started, a stuck node).
  bool stragglers_timed_out() {
    if (printed_ < static_cast<std::uint64_t>(o_.rounds)) return false;
    if (!last_round_at_) last_round_at_ = Clock::now();
    if (Clock::now() - *last_round_at_ < kStragglerLimit) return false;
    std::string late;
    for (int i = 1; i <= total_nodes_; ++i) {
      const auto id = static_cast<std::uint64_t>(i);
      if (!cluster_.running(id)) continue;
      auto it = last_status_.find(id);
      if (it != last_status_.end() && it->second.contains("worker") && it->second["worker"]["done"].get<bool>()) continue;
      late += (late.empty() ? "" : ", ") + std::to_string(id);
    }
    failure_ = "node(s) " + late + " had not finished " +
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kStragglerLimit).count()) +
               " s after the last round (see their logs)";
    return true;
  }

  // --- chaos (chaos_schedule.hpp): events run after their round, one per poll ---
  struct Due {
    std::uint64_t id = 0;
    Clock::time_point at;
    std::uint64_t after_round = 0;  // restarts: due once this round is printed
  };

  void run_chaos(std::uint64_t leader) {
    const auto now = Clock::now();
    for (auto it = restarts_.begin(); it != restarts_.end();) {
      if (printed_ < it->after_round) {
        ++it;
        continue;
      }
      chaos_line("restarting node " + std::to_string(it->id) + " from its data directory");
      cluster_.start(it->id);
      rejoining_.insert(it->id);
      it = restarts_.erase(it);
    }
    for (auto it = resumes_.begin(); it != resumes_.end();) {
      if (now < it->at) {
        ++it;
        continue;
      }
      chaos_line("SIGCONT node " + std::to_string(it->id));
      cluster_.kill(it->id, SIGCONT);
      paused_.erase(it->id);
      it = resumes_.erase(it);
    }
    check_replacement(leader);
    if (leader == 0) return;
    // One failure at a time: a kill or a pause waits until the previous one has healed
    // (restarted, resumed, its voter place filled), so that the run tests recovery rather
    // than a lost quorum; joins and leaves do not wait for it. One event per poll.
    const bool healing = !restarts_.empty() || !resumes_.empty() || replacement_.has_value();
    for (auto& e : events_) {
      if (e.done || printed_ < e.event.after_round) continue;
      const bool fault = e.event.kind != ChaosKind::kJoin && e.event.kind != ChaosKind::kLeave;
      if (fault && healing) continue;
      e.done = true;
      ++events_run_;
      run_event(e.event, leader);
      return;
    }
  }

  void chaos_line(const std::string& what) const {
    std::printf("demo: chaos: after round %llu: %s\n", static_cast<unsigned long long>(printed_), what.c_str());
    std::fflush(stdout);
  }

  // Live members by their Raft role, as the leader sees them; paused, leaving and
  // restarting nodes are not candidates, nor a restarted node that has not answered a
  // status request yet: one still starting has no SIGTERM handler, and a leave would
  // just kill it.
  std::vector<std::uint64_t> candidates(std::uint64_t leader, bool voters) const {
    std::vector<std::uint64_t> out;
    const auto it = last_status_.find(leader);
    if (it == last_status_.end() || !it->second.contains("members")) return out;
    for (const auto& m : it->second["members"]) {
      const auto id = m.at("id").get<std::uint64_t>();
      if (m.at("voter").get<bool>() != voters || !cluster_.running(id) || paused_.contains(id) ||
          leaving_.contains(id) || (id != leader && !last_status_.contains(id)))
        continue;
      if (std::any_of(restarts_.begin(), restarts_.end(), [id](const Due& d) { return d.id == id; })) continue;
      out.push_back(id);
    }
    return out;
  }

  std::uint64_t pick(std::vector<std::uint64_t> from) {
    if (from.empty()) return 0;
    std::sort(from.begin(), from.end());
    return from[pick_.next() % from.size()];
  }

  bool is_voter(std::uint64_t leader, std::uint64_t id) const {
    const auto v = candidates(leader, true);
    return id == leader || std::find(v.begin(), v.end(), id) != v.end();
  }

  void run_event(const ChaosEvent& e, std::uint64_t leader) {
    std::uint64_t victim = 0;
    switch (e.kind) {
      case ChaosKind::kKillLeader: victim = leader; break;
      case ChaosKind::kKillVoter: {
        auto v = candidates(leader, true);
        std::erase(v, leader);
        victim = pick(v);
        break;
      }
      case ChaosKind::kKillLearner:
      case ChaosKind::kLeave: victim = pick(candidates(leader, false)); break;
      case ChaosKind::kPause: {
        auto v = candidates(leader, true);
        std::erase(v, leader);
        const auto l = candidates(leader, false);
        v.insert(v.end(), l.begin(), l.end());
        victim = pick(v);
        break;
      }
      case ChaosKind::kJoin: {
        chaos_line("node " + std::to_string(e.node) + " joins through node " + std::to_string(leader));
        cluster_.start(e.node, {"--join", cluster_.config(leader).admin.to_string()});
        rejoining_.insert(e.node);
        ++joins_;
        return;
      }
    }
    if (victim == 0) {
      chaos_line("nobody to hit for \"" + describe(e) + "\"; skipped");
      return;
    }
    const bool voter = is_voter(leader, victim);
    const auto now = Clock::now();
    const std::string who = std::string(voter ? "voter" : "learner") + " node " + std::to_string(victim) +
                            (victim == leader ? " (the leader)" : "");
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%.1f s", e.seconds);
    switch (e.kind) {
      case ChaosKind::kKillLeader:
      case ChaosKind::kKillVoter:
      case ChaosKind::kKillLearner:
        chaos_line("SIGKILL " + who + ", restart after round " + std::to_string(printed_ + e.rounds));
        keep_bytes_of(victim);
        cluster_.kill(victim, SIGKILL);
        restarts_.push_back({victim, now, printed_ + e.rounds});
        ++kills_;
        break;
      case ChaosKind::kPause:
        chaos_line("SIGSTOP " + who + " for " + seconds);
        cluster_.kill(victim, SIGSTOP);
        paused_.insert(victim);
        resumes_.push_back({victim, now + std::chrono::milliseconds(static_cast<long>(e.seconds * 1000)), 0});
        ++pauses_;
        break;
      case ChaosKind::kLeave:
        chaos_line("SIGTERM " + who + ": it leaves the cluster");
        cluster_.kill(victim, SIGTERM);
        leaving_.insert(victim);
        ++leaves_;
        break;
      case ChaosKind::kJoin: break;
    }
    if (voter && e.kind != ChaosKind::kLeave && !replacement_) replacement_ = Due{victim, now};
  }

  // Its counters start again from 0 if it comes back: keep what it had sent.
  void keep_bytes_of(std::uint64_t id) {
    if (last_status_[id].contains("worker")) bytes_before_kill_ += last_status_[id]["worker"]["bytes_sent"].get<double>();
    last_status_.erase(id);
  }

  void note_left(std::uint64_t id, int status) {
    const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    chaos_line("node " + std::to_string(id) + (clean ? " left and exited 0" : " left, but exited with " + std::to_string(status)));
    if (!clean) failure_ = "node " + std::to_string(id) + " did not leave cleanly (see " + cluster_.log_file(id).string() + ")";
    keep_bytes_of(id);
  }

  // A restarted or joining node's rounds from its start to its first completed exchange.
  void note_rejoin(std::uint64_t id, const json& s) {
    if (!rejoining_.contains(id) || !s.contains("worker")) return;
    const auto first = s["worker"]["first_exchange_round"].get<std::uint64_t>();
    if (first == 0) return;
    const auto started = s["worker"]["started_round"].get<std::uint64_t>();
    const auto rounds = static_cast<std::int64_t>(first) - static_cast<std::int64_t>(started);
    rounds_to_rejoin_[id] = std::max(rounds_to_rejoin_[id], rounds);
    chaos_line("node " + std::to_string(id) + " started at round " + std::to_string(started) +
               " and exchanged in round " + std::to_string(first));
    rejoining_.erase(id);
  }

  // The voter set is whole again: target_voters (3) voters, all healthy in the leader's view,
  // the stopped one not among them.
  void check_replacement(std::uint64_t leader) {
    if (!replacement_ || leader == 0 || leader == replacement_->id) return;
    const auto it = last_status_.find(leader);
    if (it == last_status_.end() || !it->second.contains("members")) return;
    int healthy_voters = 0;
    for (const auto& m : it->second["members"]) {
      if (!m.at("voter").get<bool>()) continue;
      if (m.at("id").get<std::uint64_t>() == replacement_->id) return;
      const auto health = m.value("health", "");
      if (health == "self" || health == "healthy") ++healthy_voters;
    }
    if (healthy_voters < kChaosVoters) return;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - replacement_->at).count();
    replacement_ms_.push_back(ms);
    chaos_line("node " + std::to_string(replacement_->id) + "'s voter place taken: " + std::to_string(healthy_voters) +
               " healthy voters " + std::to_string(static_cast<long>(ms)) + " ms after it stopped (seen at a 250 ms poll)");
    replacement_.reset();
  }

  std::int64_t max_rounds_to_rejoin() const {
    std::int64_t most = 0;
    for (const auto& [id, rounds] : rounds_to_rejoin_) most = std::max(most, rounds);
    return rejoining_.empty() ? most : -1;  // -1: some node never exchanged
  }

  double max_replacement_ms() const {
    double most = 0;
    for (double ms : replacement_ms_) most = std::max(most, ms);
    return replacement_ ? -1 : most;  // -1: a voter set was never whole again
  }

  const DemoOptions& o_;
  LocalCluster& cluster_;
  struct Scheduled {
    ChaosEvent event;
    bool done = false;
  };
  std::vector<Scheduled> events_;
  const int total_nodes_;
  common::SplitMix64 pick_;
  std::size_t events_run_ = 0;
  std::vector<Due> restarts_;
  std::vector<Due> resumes_;
  std::set<std::uint64_t> paused_;
  std::set<std::uint64_t> leaving_;
  std::set<std::uint64_t> rejoining_;
  std::map<std::uint64_t, std::int64_t> rounds_to_rejoin_;
  std::optional<Due> replacement_;
  std::vector<double> replacement_ms_;
  int kills_ = 0;
  int pauses_ = 0;
  int joins_ = 0;
  int leaves_ = 0;
  std::uint64_t rounds_with_timeouts_ = 0;
  std::optional<Clock::time_point> last_round_at_;
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
  std::vector<ChaosEvent> events;
  if (o.chaos) {
    co.nodes = o.nodes + kChaosJoiners;
    events = chaos_schedule(o.chaos_seed, chaos_shape(o));
    co.customize = [&o](node::NodeConfig& c) {
      configure_training_node(c, o);
      // The founders know each other; everyone else joins.
      if (c.id <= static_cast<std::uint64_t>(kChaosVoters)) {
        std::erase_if(c.peers, [](const node::PeerConfig& p) { return p.id > static_cast<std::uint64_t>(kChaosVoters); });
      } else {
        c.peers.clear();
      }
      c.training.shards = static_cast<std::uint32_t>(o.nodes);
      c.failure_timeout = kChaosFailureTimeout;
      // Round 1 waits for the learners' joins (LibTorch takes seconds to start).
      c.coordinator.start_workers = static_cast<std::size_t>(o.nodes);
      c.coordinator.start_grace = std::chrono::seconds(60);
    };
  }
  ::signal(SIGPIPE, SIG_IGN);
  LocalCluster cluster(co);
  DemoRun run(o, cluster, events, co.nodes);
  std::printf("demo: %d nodes on loopback (%s), %s on non-IID Fashion-MNIST (Dirichlet alpha %.2f), %s at density %g, "
              "%d rounds of %d local steps; logs in %s (%s)\n",
              o.nodes, o.transport.c_str(), o.model.c_str(), o.alpha, o.sparsifier.c_str(), o.density, o.rounds,
              o.local_steps, dir.path.c_str(), o.keep ? "kept" : "removed at the end unless the run fails; --keep keeps them");
  if (o.chaos) {
    std::printf("demo: chaos seed %llu: nodes 1-%d found the cluster as voters, nodes %d-%d join as learners; "
                "failure timeout %lld ms; schedule (replayable with --chaos %llu):\n",
                static_cast<unsigned long long>(o.chaos_seed), kChaosVoters, kChaosVoters + 1, o.nodes,
                static_cast<long long>(kChaosFailureTimeout.count()), static_cast<unsigned long long>(o.chaos_seed));
    for (const auto& e : events) std::printf("demo: chaos:   %s\n", describe(e).c_str());
    for (int id = 1; id <= kChaosVoters; ++id) cluster.start(static_cast<std::uint64_t>(id));
    const auto leader = cluster.wait_for_leader(std::chrono::seconds(30));
    for (int id = kChaosVoters + 1; id <= o.nodes && leader != 0; ++id)
      cluster.start(static_cast<std::uint64_t>(id), {"--join", cluster.config(leader).admin.to_string()});
  } else {
    cluster.start_all();
  }
  std::fflush(stdout);

  const int rc = run.watch();
  auto result = run.result();
  if (rc == kExitOk && o.chaos) run.check_topologies(result);
  cluster.stop_all(std::chrono::seconds(5));
  if (rc != kExitOk) {
    dir.remove = false;
    std::fprintf(stderr, "raftfl: demo: %s; node logs kept in %s\n", run.failure().c_str(), dir.path.c_str());
  } else {
    run.print_summary(result);
    if (o.chaos) run.print_chaos_summary(result);
  }
  const bool ok = rc == kExitOk && result.topologies_agree;
  if (!result.topologies_agree)
    std::fprintf(stderr, "raftfl: demo: the nodes' plans differ: %s\n", result.topology_disagreement.c_str());
  if (o.json) run.print_json(result, ok);
  std::fflush(stdout);
  return ok ? kExitOk : kExitFailure;
}

}  // namespace raftfl::app
