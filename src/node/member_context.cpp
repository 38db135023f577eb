#include "raftfl/node/member_context.hpp"

namespace raftfl::node {

std::string encode_member_context(const MemberEndpoints& endpoints) {
  std::string out = "raft=" + endpoints.raft.to_string();
  if (!endpoints.admin.host.empty()) out += " admin=" + endpoints.admin.to_string();
  return out;
}

std::optional<Endpoint> admin_endpoint_of(const raft::Configuration& config, raft::NodeId member) {
  const auto it = config.contexts.find(member);
  if (it == config.contexts.end()) return std::nullopt;
  const auto endpoints = decode_member_context(it->second);
  if (!endpoints || endpoints->admin.host.empty()) return std::nullopt;
  return endpoints->admin;
}

std::optional<MemberEndpoints> decode_member_context(std::string_view context) {
  std::optional<Endpoint> raft;
  std::optional<Endpoint> admin;
  while (!context.empty()) {
    const std::size_t space = context.find(' ');
    const std::string_view field = context.substr(0, space);
    context = space == std::string_view::npos ? std::string_view() : context.substr(space + 1);
    const std::size_t equals = field.find('=');
    if (equals == std::string_view::npos) continue;
    const std::string_view key = field.substr(0, equals);
    if (key != "raft" && key != "admin") continue;
    try {
      (key == "raft" ? raft : admin) = parse_endpoint(field.substr(equals + 1));
    } catch (const ConfigError&) {
      return std::nullopt;
    }
  }
  if (!raft) return std::nullopt;
  return MemberEndpoints{*raft, admin.value_or(Endpoint{})};
}

}  // namespace raftfl::node
