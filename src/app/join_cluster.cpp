#include "join_cluster.hpp"

#include <nlohmann/json.hpp>

#include <thread>

#include "admin_client.hpp"
#include "raftfl/common/log.hpp"

namespace raftfl::app {

Joined join_cluster(const node::NodeConfig& config, const node::Endpoint& contact, std::chrono::milliseconds limit) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + limit;
  const std::string request =
      "join " + std::to_string(config.id) + " " + config.listen.to_string() + " " + config.admin.to_string();
  node::Endpoint at = contact;
  std::string last_error = "no answer";
  auto next_report = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    if (Clock::now() >= next_report) {
      // A join that waits says so, with the reason, rather than sitting silent for a minute.
      log::line(log::Level::kInfo, "join", "still trying " + at.to_string() + ": " + last_error);
      next_report += std::chrono::seconds(5);
    }
    nlohmann::json reply;
    try {
      reply = nlohmann::json::parse(admin_request(at, request, std::chrono::seconds(5)));
    } catch (const std::exception& e) {
      // The leader may be changing, or the member we were sent to just went away: the
      // contact we were given is the one to ask again.
      last_error = e.what();
      at = contact;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    if (reply.value("ok", false)) {
      Joined joined;
      joined.id = reply.at("id").get<raft::NodeId>();
      for (const auto& m : reply.at("members")) {
        const auto id = m.at("id").get<raft::NodeId>();
        if (id == joined.id || !m.contains("raft")) continue;
        node::PeerConfig peer;
        peer.id = id;
        peer.address = node::parse_endpoint(m.at("raft").get<std::string>());
        joined.members.push_back(std::move(peer));
      }
      return joined;
    }
    last_error = reply.value("error", std::string("refused"));
    if (last_error == "not the leader") {
      if (reply.contains("leader_admin")) {
        at = node::parse_endpoint(reply.at("leader_admin").get<std::string>());
        log::line(log::Level::kInfo, "join", "the leader's admin endpoint is " + at.to_string());
        continue;
      }
      at = contact;  // no leader known yet (an election), or not where it listens
    } else if (last_error.find("pending") == std::string::npos) {
      throw JoinError("cluster at " + contact.to_string() + " refused node " + std::to_string(config.id) + ": " +
                      last_error);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  throw JoinError("could not join the cluster at " + contact.to_string() + " within " +
                  std::to_string(limit.count() / 1000) + " s: " + last_error);
}

}  // namespace raftfl::app
