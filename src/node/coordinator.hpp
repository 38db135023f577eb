#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "raftfl/common/json_writer.hpp"
#include "raftfl/gossip/round_report.hpp"
#include "raftfl/node/config.hpp"
#include "raftfl/node/raft_driver.hpp"

namespace raftfl::node {

// What the coordinator learnt about one round from the workers' reports.
struct RoundSummary {
  std::uint64_t round = 0;
  std::size_t expected = 0;  // participants in the round's Topology
  std::size_t reports = 0;
  double loss_sum = 0.0;
  double accuracy_sum = 0.0;
  std::size_t accuracy_reports = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t max_round_micros = 0;
  std::uint64_t max_exchange_micros = 0;
  std::size_t timeouts = 0;
  double spectral_gap = -1.0;
  bool logged = false;
  std::set<std::uint64_t> reporters;  // a report resent after a leader change counts once
};

// The coordinator role (docs/ARCHITECTURE.md, "A round", step 1), held by whichever node Raft elected:
// it claims the role with a Coordinator entry, keeps Topology entries committed
// `rounds_ahead` rounds ahead of the workers, batches bandwidth changes into Bandwidth
// entries, and gathers the workers' reports into per-round metrics.
class Coordinator {
 public:
  Coordinator(asio::io_context& io, RaftDriver& node, const NodeConfig& config);

  void leadership_changed(bool leader);
  void control_applied() { wake_.cancel(); }
  void report(net::NodeId from, const gossip::RoundReport& report);
  void stop();

  // Writes the "coordinator" status object.
  void write_status(JsonWriter& out) const;

 private:
  asio::awaitable<void> run(std::uint64_t generation, raft::Term term);
  bool active(std::uint64_t generation, raft::Term term) const;
  // Each returns true when it proposed something (the loop then looks again).
  // The data plan, the configured members, the departed ones.
  asio::awaitable<bool> sync_members();
  asio::awaitable<bool> admit_joiners();
  asio::awaitable<bool> judge_workers();
  asio::awaitable<bool> plan_round(raft::Term term);
  asio::awaitable<bool> publish_bandwidth();
  // Its last report is too far behind the others: pairing it would cost its peer the round.
  bool behind(net::NodeId worker) const;
  // Silent for the failure timeout, or failure_rounds of reports missing.
  bool failing(net::NodeId worker, std::chrono::steady_clock::time_point now) const;
  asio::awaitable<void> sleep(std::chrono::milliseconds d);
  void log_round(RoundSummary& summary);

  asio::io_context& io_;
  RaftDriver& node_;
  NodeConfig config_;
  asio::steady_timer wake_;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
  bool coordinating_ = false;
  std::uint64_t progress_ = 0;  // the highest round a worker reported done
  std::map<net::NodeId, std::uint64_t> last_report_;  // per worker: the last round it reported done
  std::map<std::uint64_t, RoundSummary> rounds_;
  std::map<std::pair<net::NodeId, net::NodeId>, double> measured_;  // (from, to) -> bytes/s
  std::map<net::NodeId, double> finals_;                            // final test accuracy
  std::chrono::steady_clock::time_point next_bandwidth_;
  std::chrono::steady_clock::time_point leader_since_;
  std::set<net::NodeId> joiners_;  // asked to be admitted as workers
  // Started (or were readmitted) with a stale model: the next round they take part in
  // gives them their peer's whole model.
  std::set<net::NodeId> fresh_;
  control::MatcherOptions matcher_;
};

}  // namespace raftfl::node
