#include "leave_cluster.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <future>
#include <string>

#include "admin_client.hpp"
#include "raftfl/common/log.hpp"
#include "raftfl/node/member_context.hpp"

namespace raftfl::app {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kAwait = asio::experimental::as_tuple(asio::use_awaitable);
constexpr auto kRetryPause = std::chrono::milliseconds(100);

asio::awaitable<void> pause(asio::io_context& io, std::chrono::milliseconds d) {
  asio::steady_timer timer(io, d);
  co_await timer.async_wait(kAwait);
}

// The voter most caught up, other than this node.
raft::NodeId successor(const node::RaftDriver& driver) {
  raft::NodeId best = raft::kNoNode;
  raft::Index best_match = 0;
  for (raft::NodeId v : driver.raft().config().voters) {
    const auto* pr = driver.raft().progress(v);
    if (v == driver.config().id || pr == nullptr) continue;
    if (best == raft::kNoNode || pr->match > best_match) {
      best = v;
      best_match = pr->match;
    }
  }
  return best;
}

}  // namespace

bool should_leave(const node::RaftDriver& driver) {
  const auto& config = driver.raft().config();
  const auto self = driver.config().id;
  if (!config.contains(self)) return false;
  return driver.config().leave_on_stop.value_or(!config.is_voter(self));
}

asio::awaitable<bool> leave_cluster(asio::io_context& io, node::RaftDriver& driver, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  const auto self = driver.config().id;
  const std::string name = "node " + std::to_string(self);
  std::string last_error = "no leader known";
  while (Clock::now() < deadline) {
    if (!driver.raft().config().contains(self)) co_return true;
    if (driver.is_leader()) {
      const auto next = successor(driver);
      if (next == raft::kNoNode) {
        last_error = "it is the only voter";
        break;
      }
      if (driver.raft().transfer_target() == raft::kNoNode) {
        log::line(log::Level::kInfo, "node", name + ": leaving; handing the leadership to node " + std::to_string(next));
        driver.transfer_leadership(next);
      }
      co_await pause(io, kRetryPause);
      continue;
    }
    const auto admin = node::admin_endpoint_of(driver.raft().config(), driver.leader());
    if (!admin) {
      co_await pause(io, kRetryPause);
      continue;
    }
    // The admin client blocks: it runs on a thread of its own while the reactor keeps
    // serving the cluster.
    const node::Endpoint leader_admin = *admin;
    auto reply = std::async(std::launch::async, [leader_admin, self] {
      return admin_request(leader_admin, "member remove " + std::to_string(self), std::chrono::seconds(5));
    });
    while (reply.wait_for(std::chrono::seconds(0)) != std::future_status::ready) co_await pause(io, std::chrono::milliseconds(10));
    try {
      const auto answer = nlohmann::json::parse(reply.get());
      if (answer.value("ok", false)) {
        log::line(log::Level::kInfo, "node", name + ": removed from the cluster's configuration");
        co_return true;
      }
      last_error = answer.value("error", std::string("refused"));
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    co_await pause(io, kRetryPause);
  }
  log::line(log::Level::kWarn, "node", name + ": stopping without leaving the cluster: " + last_error);
  co_return false;
}

}  // namespace raftfl::app
