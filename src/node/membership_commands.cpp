#include "raftfl/node/membership_commands.hpp"

#include <algorithm>
#include <charconv>

#include "raftfl/common/json_writer.hpp"
#include "raftfl/node/member_context.hpp"

namespace raftfl::node {
namespace {

constexpr const char* kUsage =
    "usage: join ID RAFT_ENDPOINT ADMIN_ENDPOINT | member list | member add ID RAFT_ENDPOINT ADMIN_ENDPOINT | "
    "member promote ID | member demote ID | member remove ID";

std::string error_json(std::string_view what) {
  JsonWriter w;
  return w.begin_object().field("ok", false).field("error", what).end_object().str();
}

std::optional<raft::NodeId> parse_id(const std::string& text) {
  raft::NodeId id = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, id);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return id;
}

void write_member(JsonWriter& w, const raft::Configuration& config, raft::NodeId id) {
  w.begin_object().field("id", id).field("role", config.is_voter(id) ? "voter" : "learner");
  if (auto it = config.contexts.find(id); it != config.contexts.end()) {
    if (const auto endpoints = decode_member_context(it->second)) {
      w.field("raft", endpoints->raft.to_string());
      if (!endpoints->admin.host.empty()) w.field("admin", endpoints->admin.to_string());
    }
  }
  w.end_object();
}

void write_members(JsonWriter& w, const raft::Configuration& config) {
  w.key("members").begin_array();
  for (raft::NodeId id : config.voters) write_member(w, config, id);
  for (raft::NodeId id : config.learners) write_member(w, config, id);
  w.end_array();
}

}  // namespace

asio::awaitable<std::optional<std::string>> MembershipCommands::handle(const std::vector<std::string>& words) {
  if (words.empty()) co_return std::nullopt;
  if (words[0] == "join") {
    if (words.size() != 4) co_return error_json(kUsage);
    co_return co_await join(words, true);
  }
  if (words[0] != "member") co_return std::nullopt;
  if (words.size() == 2 && words[1] == "list") co_return list();
  if (words.size() == 5 && words[1] == "add") {
    const std::vector<std::string> join_words(words.begin() + 1, words.end());
    co_return co_await join(join_words, false);
  }
  if (words.size() == 3 && (words[1] == "promote" || words[1] == "demote" || words[1] == "remove")) {
    const auto id = parse_id(words[2]);
    if (!id || *id == raft::kNoNode) co_return error_json("member " + words[1] + ": ID must be a node id above 0");
    const auto type = words[1] == "promote"  ? raft::ConfChangeType::kPromoteLearner
                      : words[1] == "demote" ? raft::ConfChangeType::kDemoteVoter
                                             : raft::ConfChangeType::kRemoveNode;
    co_return co_await change(type, *id);
  }
  co_return error_json(kUsage);
}

std::string MembershipCommands::not_leader() const {
  JsonWriter w;
  w.begin_object().field("ok", false).field("error", "not the leader").field("leader", node_.leader());
  if (const auto admin = admin_endpoint_of(node_.raft().config(), node_.leader()))
    w.field("leader_admin", admin->to_string());
  return w.end_object().str();
}

std::string MembershipCommands::list() const {
  const raft::Configuration& config = node_.raft().config();
  JsonWriter w;
  w.begin_object().field("ok", true).field("leader", node_.leader());
  write_members(w, config);
  return w.end_object().str();
}

asio::awaitable<std::string> MembershipCommands::join(const std::vector<std::string>& words, bool reply_members) {
  const auto requested = parse_id(words[1]);
  if (!requested) co_return error_json("join: ID must be a number (0: assign one)");
  MemberEndpoints endpoints;
  try {
    endpoints.raft = parse_endpoint(words[2]);
    endpoints.admin = parse_endpoint(words[3]);
  } catch (const ConfigError& e) {
    co_return error_json(std::string("join: bad endpoint: ") + e.what());
  }
  if (!node_.is_leader()) co_return not_leader();
  const raft::Configuration& config = node_.raft().config();
  raft::NodeId id = *requested;
  if (id == raft::kNoNode) {
    // A joiner that asked for an id and retries (it lost our answer, or crashed before
    // writing its id down) is the member already listening where it says it listens.
    for (const auto& [member, context] : config.contexts) {
      const auto known = decode_member_context(context);
      if (known && known->raft == endpoints.raft) id = member;
    }
  }
  if (id != raft::kNoNode && config.contains(id)) {
    // A joiner that retries (it crashed before its snapshot came, or lost our answer)
    // finds itself already added; anyone else is refused the id.
    const auto it = config.contexts.find(id);
    const auto known = it == config.contexts.end() ? std::nullopt : decode_member_context(it->second);
    if (!known || known->raft != endpoints.raft)
      co_return error_json("node id " + std::to_string(id) + " is taken by another member");
  } else {
    if (id == raft::kNoNode) {
      id = 1;
      for (raft::NodeId v : config.voters) id = std::max(id, v + 1);
      for (raft::NodeId l : config.learners) id = std::max(id, l + 1);
    }
    // Named: GCC 12 destroys a temporary in a co_await expression twice (NOTES.md).
    const raft::ConfChange add{raft::ConfChangeType::kAddLearner, id, encode_member_context(endpoints)};
    const auto outcome = co_await node_.propose_conf_change(add);
    if (!outcome.ok) {
      if (outcome.error == "not the leader") co_return not_leader();
      co_return error_json("join: " + outcome.error);
    }
  }
  JsonWriter w;
  w.begin_object().field("ok", true).field("id", id).field("leader", node_.leader());
  if (reply_members) write_members(w, node_.raft().config());
  co_return w.end_object().str();
}

asio::awaitable<std::string> MembershipCommands::change(raft::ConfChangeType type, raft::NodeId id) {
  if (!node_.is_leader()) co_return not_leader();
  const raft::ConfChange request{type, id, ""};
  if (const auto why = raft::conf_change_error(node_.raft().config(), request)) co_return error_json(*why);
  const auto outcome = co_await node_.propose_conf_change(request);
  if (!outcome.ok) {
    if (outcome.error == "not the leader") co_return not_leader();
    co_return error_json(outcome.error);
  }
  JsonWriter w;
  w.begin_object().field("ok", true).field("id", id).field("leader", node_.leader());
  write_members(w, node_.raft().config());
  co_return w.end_object().str();
}

}  // namespace raftfl::node
