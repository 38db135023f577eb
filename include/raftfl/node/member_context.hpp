#pragma once

// What a node attaches to its membership change, and so what every member (and a node
// that starts from a snapshot) knows of it: where its Raft transport and its admin
// endpoint listen. Kept in the Raft configuration (raft::Configuration::contexts) as
// "raft=HOST:PORT admin=HOST:PORT" (admin left out where not known): readable in a dump,
// and a later key is ignored by an older reader.

#include <optional>
#include <string>
#include <string_view>

#include "raftfl/node/config.hpp"
#include "raftfl/raft/configuration.hpp"

namespace raftfl::node {

struct MemberEndpoints {
  Endpoint raft;
  Endpoint admin;  // empty host: not known (a member written from another node's [[peers]])
  bool operator==(const MemberEndpoints&) const = default;
};

std::string encode_member_context(const MemberEndpoints& endpoints);
// nullopt when `context` lacks the raft endpoint or an endpoint does not parse.
std::optional<MemberEndpoints> decode_member_context(std::string_view context);

// Where `member`'s admin endpoint is, by `config`'s contexts; nullopt when not known.
std::optional<Endpoint> admin_endpoint_of(const raft::Configuration& config, raft::NodeId member);

}  // namespace raftfl::node
