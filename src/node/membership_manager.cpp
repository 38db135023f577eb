#include "raftfl/node/membership_manager.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include "raftfl/common/log.hpp"
#include "raftfl/node/member_context.hpp"

namespace raftfl::node {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kAwait = asio::experimental::as_tuple(asio::use_awaitable);
constexpr auto kCheckEvery = std::chrono::milliseconds(100);

const char* verb(raft::ConfChangeType type) {
  switch (type) {
    case raft::ConfChangeType::kPromoteLearner: return "promoting";
    case raft::ConfChangeType::kDemoteVoter: return "demoting";
    case raft::ConfChangeType::kRemoveNode: return "removing";
    case raft::ConfChangeType::kAddLearner: return "adding";
    case raft::ConfChangeType::kUpdateContext: return "recording the endpoints of";
  }
  return "changing";
}

bool is_wildcard(const std::string& host) { return host == "0.0.0.0" || host == "::" || host.empty(); }

}  // namespace

MembershipManager::MembershipManager(asio::io_context& io, RaftDriver& node) : io_(io), node_(node), timer_(io) {}

void MembershipManager::start() { asio::co_spawn(io_, loop(), asio::detached); }

void MembershipManager::stop() {
  stopped_ = true;
  timer_.cancel();
}

MemberHealth member_health(const RaftDriver& node, raft::NodeId member, Clock::time_point now,
                           Clock::time_point heard_since) {
  if (member == node.config().id) return MemberHealth::kSelf;
  const auto heard = std::max(node.last_heard(member).value_or(heard_since), heard_since);
  const auto* pr = node.raft().progress(member);
  return raft::judge_member(std::chrono::duration_cast<std::chrono::milliseconds>(now - heard).count(),
                            node.config().failure_timeout.count(),
                            pr != nullptr ? std::optional<raft::Index>(pr->match) : std::nullopt,
                            node.raft().log().last_index());
}

MemberHealth MembershipManager::health(raft::NodeId id, Clock::time_point now) const {
  // Until a new leader has led for a failure timeout, silence may be its own doing.
  return member_health(node_, id, now, leader_since_);
}

std::optional<raft::ConfChange> MembershipManager::own_context() const {
  const raft::Configuration& config = node_.raft().config();
  const NodeConfig& self = node_.config();
  // A wildcard listen address is no address to dial: the one the peers' files give stays.
  MemberEndpoints wanted{self.listen, self.admin};
  const auto it = config.contexts.find(self.id);
  const bool known = it != config.contexts.end();
  if (known && is_wildcard(self.listen.host)) {
    if (const auto recorded = decode_member_context(it->second)) wanted.raft = recorded->raft;
  }
  const std::string context = encode_member_context(wanted);
  if (known && it->second == context) return std::nullopt;
  return raft::ConfChange{raft::ConfChangeType::kUpdateContext, self.id, context};
}

std::optional<raft::ConfChange> MembershipManager::next_change(Clock::time_point now) const {
  if (!node_.is_leader()) return std::nullopt;
  const raft::Configuration& config = node_.raft().config();
  // Followers send joiners to the leader's admin endpoint: every member must know it.
  if (auto announce = own_context()) return announce;
  return raft::next_voter_change(
      config, static_cast<std::size_t>(node_.config().target_voters), [&](raft::NodeId id) { return health(id, now); },
      [&](raft::NodeId id) {
        const auto* pr = node_.raft().progress(id);
        return pr != nullptr ? pr->match : raft::Index{0};
      });
}

asio::awaitable<void> MembershipManager::loop() {
  while (!stopped_) {
    timer_.expires_after(kCheckEvery);
    co_await timer_.async_wait(kAwait);
    if (stopped_ || node_.stopping()) co_return;
    const auto now = Clock::now();
    const bool leader = node_.is_leader();
    if (leader && !was_leader_) leader_since_ = now;
    was_leader_ = leader;
    const auto change = next_change(now);
    if (!change) continue;
    log::line(log::Level::kInfo, "membership",
              std::string(verb(change->type)) + " node " + std::to_string(change->node) + " (voters " +
                  std::to_string(node_.raft().config().voters.size()) + ", target " +
                  std::to_string(node_.config().target_voters) + ")");
    // Waits until applied; a pending change or a lost leadership is simply tried again.
    const auto outcome = co_await node_.propose_conf_change(*change);
    if (!outcome.ok && outcome.error.find("pending") == std::string::npos)
      log::line(log::Level::kInfo, "membership", "node " + std::to_string(change->node) + " not changed: " + outcome.error);
  }
}

}  // namespace raftfl::node
