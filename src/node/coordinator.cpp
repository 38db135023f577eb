#include "coordinator.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "raftfl/common/failure.hpp"
#include "raftfl/common/log.hpp"
#include "raftfl/node/member_context.hpp"
#include "raftfl/node/membership_manager.hpp"

namespace raftfl::node {
namespace {

using NodeId = raft::NodeId;
constexpr auto kAwait = asio::experimental::as_tuple(asio::use_awaitable);
using Clock = std::chrono::steady_clock;
// Links never measured count as fast, so that the matcher tries them and they get measured.
constexpr double kUnmeasuredBandwidth = 1e12;
// A worker is behind, and not paired, when its last report is this many rounds (past
// rounds_ahead) older than the furthest report: its peer would wait for it in vain.
constexpr std::uint64_t kBehindSlack = 2;
// Round summaries kept for `raftfl status`.
constexpr std::size_t kRoundsKept = 256;

}  // namespace

Coordinator::Coordinator(asio::io_context& io, RaftDriver& node, const NodeConfig& config)
    : io_(io), node_(node), config_(config), wake_(io) {}

void Coordinator::stop() {
  stopping_ = true;
  ++generation_;
  wake_.cancel();
}

void Coordinator::leadership_changed(bool leader) {
  ++generation_;
  coordinating_ = false;
  wake_.cancel();
  if (!leader || stopping_) return;
  asio::co_spawn(io_, run(generation_, node_.term()), [](std::exception_ptr error) {
    if (error) common::log_failure("coordinator", "stopped", error);
  });
}

bool Coordinator::active(std::uint64_t generation, raft::Term term) const {
  return !stopping_ && generation == generation_ && node_.is_leader() && node_.term() == term;
}

asio::awaitable<void> Coordinator::sleep(std::chrono::milliseconds d) {
  wake_.expires_after(d);
  co_await wake_.async_wait(kAwait);
}

// Commands are named locals, never temporaries inside a co_await expression: GCC 12
// destroys such a temporary twice (a known coroutine bug; it aborted in free()).
asio::awaitable<void> Coordinator::run(std::uint64_t generation, raft::Term term) {
  const NodeId self = config_.id;
  const auto& control = node_.state().control();
  leader_since_ = Clock::now();

  // Claim the role. Applying raises first_round past every committed round, so rounds go
  // on from where the previous coordinator stopped.
  while (active(generation, term)) {
    if (control.coordinator().leader == self && control.coordinator().term == term) break;
    const control::Command claim = control::CoordinatorChange{self, term, control.last_round() + 1};
    auto outcome = co_await node_.propose_control(claim);
    if (!outcome.ok) co_await sleep(std::chrono::milliseconds(50));
  }
  if (!active(generation, term)) co_return;
  coordinating_ = true;
  log::line(log::Level::kInfo, "coordinator",
            "node " + std::to_string(self) + " coordinates from round " +
                std::to_string(control.coordinator().first_round) + " (term " + std::to_string(term) + ")");

  matcher_.bandwidth_threshold = config_.coordinator.bandwidth_threshold;
  matcher_.history_rounds = config_.coordinator.history_rounds;
  next_bandwidth_ = Clock::now() + config_.coordinator.bandwidth_interval;

  while (active(generation, term)) {
    if (co_await sync_members()) continue;
    if (!active(generation, term)) break;
    if (co_await admit_joiners()) continue;
    if (!active(generation, term)) break;
    if (co_await judge_workers()) continue;
    if (!active(generation, term)) break;
    if (co_await plan_round(term)) continue;
    if (!active(generation, term)) break;
    if (co_await publish_bandwidth()) continue;
    const bool starting = control.last_round() == 0;
    co_await sleep(std::chrono::milliseconds(starting ? 20 : 200));
  }
  coordinating_ = false;
}

asio::awaitable<bool> Coordinator::sync_members() {
  const auto& control = node_.state().control();
  // The configured nodes are the initial members, added in ascending id so that shard i
  // goes to the i-th of them (as every node's file lists the same cluster); each trains.
  std::vector<std::pair<NodeId, std::string>> configured{{config_.id, config_.listen.to_string()}};
  for (const auto& p : config_.peers) configured.emplace_back(p.id, p.address.to_string());
  std::sort(configured.begin(), configured.end());
  if (control.data().shard_count == 0) {
    const control::Command plan = control::DataPlan{config_.shard_count()};
    co_await node_.propose_control(plan);
    co_return true;
  }
  for (const auto& [id, endpoint] : configured) {
    if (control.members().contains(id)) continue;
    // A configured node that has since left the Raft configuration stays out.
    const auto& raft_config = node_.raft().config();
    if (!raft_config.contains(id)) continue;
    const control::Member member{id, endpoint, true, config_.training.enabled ? control::kCapabilityTrains : 0,
                                 false, {}};
    const control::Command add = control::MembershipChange{control::MembershipChange::Op::kAdd, member};
    co_await node_.propose_control(add);
    co_return true;
  }
  // A member that left the Raft configuration (it left, or was removed) leaves the
  // workers too, and its shards go to those who stay.
  for (const auto& [id, m] : control.members()) {
    if (node_.raft().config().contains(id)) continue;
    log::line(log::Level::kInfo, "coordinator", "node " + std::to_string(id) + " left: its shards are handed on");
    const control::Member gone{id, "", false, 0, false, {}};
    const control::Command remove = control::MembershipChange{control::MembershipChange::Op::kRemove, gone};
    co_await node_.propose_control(remove);
    co_return true;
  }
  co_return false;
}

asio::awaitable<bool> Coordinator::admit_joiners() {
  const auto& control = node_.state().control();
  for (auto it = joiners_.begin(); it != joiners_.end();) {
    const NodeId id = *it;
    const auto& raft_config = node_.raft().config();
    const bool in_raft = raft_config.contains(id);
    if (control.members().contains(id) || !in_raft) {
      it = joiners_.erase(it);
      continue;
    }
    std::string endpoint;
    if (const auto c = raft_config.contexts.find(id); c != raft_config.contexts.end())
      if (const auto e = decode_member_context(c->second)) endpoint = e->raft.to_string();
    const control::Member member{id, endpoint, false, control::kCapabilityTrains, false, {}};
    const control::Command add = control::MembershipChange{control::MembershipChange::Op::kAdd, member};
    log::line(log::Level::kInfo, "coordinator", "admitting node " + std::to_string(id) + " as a worker");
    // Its ask is a sign of life: judged from the cluster's round, not from before it came.
    last_report_[id] = std::max(last_report_[id], progress_);
    co_await node_.propose_control(add);
    co_return true;
  }
  co_return false;
}

bool Coordinator::failing(NodeId worker, Clock::time_point now) const {
  if (worker == config_.id) return false;
  if (member_health(node_, worker, now, leader_since_) == MemberHealth::kFailed) return true;
  const auto rounds = config_.coordinator.failure_rounds;
  if (rounds == 0) return false;
  // A worker that has not reported to this coordinator is judged from the round it took
  // over at: reports are on their way after a leader change.
  const auto it = last_report_.find(worker);
  const std::uint64_t last =
      it != last_report_.end() ? it->second : node_.state().control().coordinator().first_round - 1;
  return last + config_.coordinator.rounds_ahead + rounds < progress_;
}

asio::awaitable<bool> Coordinator::judge_workers() {
  const auto& control = node_.state().control();
  // Once every round is planned nothing waits for anyone: the finished stop reporting.
  if (control.last_round() >= config_.training.rounds) co_return false;
  const auto now = Clock::now();
  for (const NodeId id : control.workers()) {
    const control::Member* m = control.member(id);
    const bool failed = failing(id, now);
    if (failed == m->failed) continue;
    log::line(failed ? log::Level::kWarn : log::Level::kInfo, "coordinator",
              "node " + std::to_string(id) + (failed ? " failed: not paired until it is back" : " is back: paired again"));
    const control::Command judged = control::WorkerHealth{id, failed};
    const auto outcome = co_await node_.propose_control(judged);
    // Back from a pause or a crash, its model is stale: it takes a peer's first.
    if (outcome.ok && !failed) fresh_.insert(id);
    co_return true;
  }
  co_return false;
}

asio::awaitable<bool> Coordinator::plan_round(raft::Term term) {
  const NodeId self = config_.id;
  const auto& control = node_.state().control();
  const auto workers = control.workers();
  std::vector<NodeId> participants;
  for (auto id : workers)
    if (!control.member(id)->failed && (id == self || (node_.connected(id) && !behind(id)))) participants.push_back(id);
  // Round 1 waits (a little) for every worker to connect, so that nobody sits out the
  // first rounds only because its connection was a moment late; a cluster that grows by
  // joins waits for start_workers of them.
  const auto wanted = std::max<std::size_t>(workers.size(), config_.coordinator.start_workers);
  const bool starting = control.last_round() == 0 && participants.size() < wanted &&
                        Clock::now() < leader_since_ + config_.coordinator.start_grace;
  const auto base = std::max<std::uint64_t>(progress_, control.coordinator().first_round - 1);
  const auto target = std::min<std::uint64_t>(config_.training.rounds, base + config_.coordinator.rounds_ahead);
  if (workers.empty() || starting || control.last_round() >= target) co_return false;
  std::vector<NodeId> fresh;
  for (auto id : fresh_)
    if (std::binary_search(participants.begin(), participants.end(), id)) fresh.push_back(id);
  const auto round = control.last_round() + 1;
  const control::Command topology = control::plan_round(control, participants, matcher_, round, term,
                                                        config_.cluster_id, kUnmeasuredBandwidth, fresh);
  auto outcome = co_await node_.propose_control(topology);
  if (!outcome.ok) {
    co_await sleep(std::chrono::milliseconds(50));
  } else {
    // Whether it got a giver or not, a participant has a current round from now on.
    for (auto id : participants) fresh_.erase(id);
  }
  co_return true;
}

asio::awaitable<bool> Coordinator::publish_bandwidth() {
  if (Clock::now() < next_bandwidth_) co_return false;
  next_bandwidth_ = Clock::now() + config_.coordinator.bandwidth_interval;
  std::vector<control::BandwidthCell> cells;
  for (const auto& [link, bps] : measured_) cells.push_back({link.first, link.second, bps});
  auto delta = control::bandwidth_delta(node_.state().control(), cells, config_.coordinator.bandwidth_change);
  if (delta.empty()) co_return false;
  const control::Command update = control::BandwidthUpdate{std::move(delta)};
  co_await node_.propose_control(update);
  co_return true;
}

void Coordinator::report(net::NodeId from, const gossip::RoundReport& r) {
  if (r.final) {
    if (finals_.emplace(from, r.accuracy).second)
      log::line(log::Level::kInfo, "coordinator",
                "node " + std::to_string(from) + " finished: test accuracy " + std::to_string(r.accuracy * 100) + "%");
    return;
  }
  const auto* member = node_.state().control().member(from);
  if (member == nullptr || member->shards.empty()) {
    // Not a worker of the control state yet: a node that joined the cluster asks to be one.
    if (r.joining && joiners_.insert(from).second) wake_.cancel();
    // Or it is one already and this node has not applied its admission yet: a follower
    // may apply an entry before the leader does (the commit index leaves in the Ready
    // that the leader applies after its persist). Its announcement must not be lost, or
    // it would never take a peer's model.
    if (r.joining && r.round > 0) fresh_.insert(from);
    return;
  }
  auto& last = last_report_[from];
  last = std::max(last, r.round);
  if (r.joining) {
    // A worker that starts after round 1 has no current model (or a checkpoint's).
    if (r.round > 0 && fresh_.insert(from).second)
      log::line(log::Level::kInfo, "coordinator",
                "node " + std::to_string(from) + " joins the rounds at " + std::to_string(r.round + 1) +
                    "; it takes a peer's model first");
    wake_.cancel();
    return;
  }
  progress_ = std::max(progress_, r.round);
  for (const auto& b : r.bandwidth) measured_[{from, b.peer}] = b.bytes_per_second;
  if (r.round + kRoundsKept < progress_) return;
  auto [it, fresh] = rounds_.try_emplace(r.round);
  RoundSummary& s = it->second;
  if (fresh) {
    s.round = r.round;
    if (const auto* t = node_.state().control().topology(r.round)) {
      s.expected = t->matching.pairs.size() * 2 + t->matching.idle.size();
      s.spectral_gap = t->spectral_gap;
    }
  }
  if (!s.reporters.insert(from).second) return;
  ++s.reports;
  s.loss_sum += r.train_loss;
  if (r.accuracy >= 0) {
    s.accuracy_sum += r.accuracy;
    ++s.accuracy_reports;
  }
  s.bytes_sent += r.bytes_sent;
  s.max_round_micros = std::max(s.max_round_micros, r.round_micros);
  s.max_exchange_micros = std::max(s.max_exchange_micros, r.exchange_micros);
  if (r.peer_timed_out) ++s.timeouts;
  if (s.expected != 0 && s.reports >= s.expected) log_round(s);
  // A round some worker never reported (it died) is logged once two later rounds are.
  for (auto& [round, older] : rounds_)
    if (round + 2 <= r.round && !older.logged) log_round(older);
  while (rounds_.size() > kRoundsKept) rounds_.erase(rounds_.begin());
  wake_.cancel();
}

bool Coordinator::behind(NodeId worker) const {
  const auto it = last_report_.find(worker);
  if (it == last_report_.end()) {
    // Unknown to this coordinator: in its first rounds every worker is (it has just taken
    // over, reports are on their way). Later, a worker that has never reported has just
    // started or come back: its process may still be loading, so it sits out until its
    // first report says it is in the cluster's round.
    return progress_ > node_.state().control().coordinator().first_round + config_.coordinator.rounds_ahead;
  }
  return it->second + config_.coordinator.rounds_ahead + kBehindSlack < progress_;
}

void Coordinator::log_round(RoundSummary& s) {
  if (s.logged) return;
  s.logged = true;
  char line[256];
  std::snprintf(line, sizeof(line), "round %llu: %zu/%zu reports, mean loss %.4f, %s, %llu bytes, %.2f s%s",
                static_cast<unsigned long long>(s.round), s.reports, s.expected,
                s.reports ? s.loss_sum / static_cast<double>(s.reports) : 0.0,
                s.accuracy_reports ? ("accuracy " + std::to_string(s.accuracy_sum * 100 / static_cast<double>(s.accuracy_reports)) + "%").c_str()
                                   : "not evaluated",
                static_cast<unsigned long long>(s.bytes_sent), static_cast<double>(s.max_round_micros) / 1e6,
                s.timeouts ? ", peer timeouts" : "");
  log::line(log::Level::kInfo, "coordinator", line);
}

void Coordinator::write_status(JsonWriter& w) const {
  const auto& control = node_.state().control();
  w.begin_object();
  w.field("coordinating", coordinating_);
  w.field("coordinator", control.coordinator().leader).field("coordinator_term", control.coordinator().term);
  w.field("first_round", control.coordinator().first_round).field("last_round", control.last_round());
  w.field("rounds_total", config_.training.rounds).field("progress", progress_);
  w.key("rounds").begin_array();
  for (const auto& [round, s] : rounds_) {
    w.begin_object();
    w.field("round", round).field("reports", static_cast<std::uint64_t>(s.reports));
    w.field("expected", static_cast<std::uint64_t>(s.expected));
    w.field("mean_loss", s.reports ? s.loss_sum / static_cast<double>(s.reports) : 0.0);
    w.field("mean_accuracy", s.accuracy_reports ? s.accuracy_sum / static_cast<double>(s.accuracy_reports) : -1.0);
    w.field("bytes_sent", s.bytes_sent);
    w.field("round_seconds", static_cast<double>(s.max_round_micros) / 1e6);
    w.field("exchange_seconds", static_cast<double>(s.max_exchange_micros) / 1e6);
    w.field("timeouts", static_cast<std::uint64_t>(s.timeouts));
    w.field("spectral_gap", s.spectral_gap);
    w.end_object();
  }
  w.end_array();
  w.key("finals").begin_array();
  for (const auto& [id, accuracy] : finals_) {
    w.begin_object().field("id", id).field("accuracy", accuracy).end_object();
  }
  w.end_array();
  w.end_object();
}

}  // namespace raftfl::node
