// `raftfl member list|add|promote|demote|remove --endpoint HOST:PORT`: the admin endpoint's
// membership commands, sent on to the leader when the node asked is a follower.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "admin_client.hpp"
#include "commands.hpp"

namespace raftfl::app {

int run_member(const std::string& action, const std::vector<std::string>& args, const std::string& endpoint_text,
               bool json) {
  std::string line = "member " + action;
  const std::size_t expected = action == "list" ? 0 : action == "add" ? 3 : 1;
  if ((action != "list" && action != "add" && action != "promote" && action != "demote" && action != "remove") ||
      args.size() != expected) {
    std::fprintf(stderr,
                 "raftfl: member: usage: member list | member add ID RAFT_HOST:PORT ADMIN_HOST:PORT | member promote ID | "
                 "member demote ID | member remove ID (each with --endpoint HOST:PORT)\n");
    return kExitUsage;
  }
  for (const auto& a : args) line += " " + a;
  node::Endpoint at;
  try {
    at = node::parse_endpoint(endpoint_text);
  } catch (const node::ConfigError& e) {
    std::fprintf(stderr, "raftfl: --endpoint '%s': %s\n", endpoint_text.c_str(), e.what());
    return kExitUsage;
  }
  // A follower names the leader's admin endpoint; one hop is enough unless the
  // leadership moves meanwhile.
  for (int hop = 0; hop < 3; ++hop) {
    nlohmann::json reply;
    try {
      reply = nlohmann::json::parse(admin_request(at, line, std::chrono::seconds(10)));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "raftfl: member %s: %s\n", action.c_str(), e.what());
      return kExitFailure;
    }
    if (!reply.value("ok", false) && reply.value("error", "") == "not the leader" && reply.contains("leader_admin")) {
      at = node::parse_endpoint(reply.at("leader_admin").get<std::string>());
      continue;
    }
    if (json) {
      std::cout << reply.dump() << "\n";
      return reply.value("ok", false) ? kExitOk : kExitFailure;
    }
    if (!reply.value("ok", false)) {
      std::fprintf(stderr, "raftfl: member %s: %s\n", action.c_str(), reply.value("error", std::string("refused")).c_str());
      return kExitFailure;
    }
    std::printf("%-6s %-8s %-24s %s\n", "id", "role", "raft", "admin");
    for (const auto& m : reply.at("members")) {
      std::printf("%-6llu %-8s %-24s %s%s\n", m.at("id").get<unsigned long long>(), m.at("role").get<std::string>().c_str(),
                  m.value("raft", std::string("-")).c_str(), m.value("admin", std::string("-")).c_str(),
                  m.at("id") == reply.value("leader", 0) ? "  (leader)" : "");
    }
    return kExitOk;
  }
  std::fprintf(stderr, "raftfl: member %s: the leadership kept moving; try again\n", action.c_str());
  return kExitFailure;
}

}  // namespace raftfl::app
