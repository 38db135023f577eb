#include "state_machine.hpp"

#include <cstring>
#include <stdexcept>

#include "raftfl/common/splitmix64.hpp"
#include "raftfl/raft/little_endian.hpp"

namespace raftfl::sim {
namespace {

// splitmix64's finalizer: cheap and well spread, enough to tell logs apart.
constexpr std::uint64_t mix(std::uint64_t x) { return common::splitmix64_mix(x); }

void put_u64(std::string& out, std::uint64_t v) { raft::put_le<std::uint64_t>(out, v); }

std::uint64_t get_u64(std::string_view in, std::size_t at) {
  if (at + 8 > in.size()) throw std::runtime_error("truncated state machine snapshot");
  return raft::get_le<std::uint64_t>(in.data() + at);
}

}  // namespace

std::uint64_t extend_prefix_hash(std::uint64_t prefix, const raft::Entry& entry) {
  std::uint64_t h = mix(prefix ^ mix(entry.index) ^ mix(entry.term + 0x51) ^ static_cast<std::uint64_t>(entry.type));
  for (char c : entry.data.view()) h = (h ^ static_cast<std::uint8_t>(c)) * 0x100000001b3ULL;
  return mix(h);
}

std::string encode_request(ClientOp op, std::size_t size) {
  std::string out;
  put_u64(out, op.client);
  put_u64(out, op.seq);
  if (out.size() < size) out.resize(size, 'x');
  return out;
}

std::optional<ClientOp> decode_request(std::string_view bytes) {
  if (bytes.size() < 16) return std::nullopt;
  return ClientOp{get_u64(bytes, 0), get_u64(bytes, 8)};
}

std::string encode_read(std::uint64_t id) {
  std::string out;
  put_u64(out, id);
  return out;
}

std::optional<std::uint64_t> decode_read(std::string_view bytes) {
  if (bytes.size() < 8) return std::nullopt;
  return get_u64(bytes, 0);
}

std::optional<StateMachine::Outcome> StateMachine::apply(const raft::Entry& entry) {
  if (entry.index != applied + 1) throw std::logic_error("entries applied out of order");
  applied = entry.index;
  hash = extend_prefix_hash(hash, entry);
  if (entry.type != raft::EntryType::kNormal) return std::nullopt;
  auto op = decode_request(entry.data.view());
  if (!op) return std::nullopt;
  std::uint64_t& last = sessions[op->client];
  if (op->seq <= last) return Outcome{*op, false};
  last = op->seq;
  executed.push_back(*op);
  return Outcome{*op, true};
}

std::string StateMachine::serialize() const {
  std::string out;
  out.reserve(32 + 16 * (executed.size() + sessions.size()));
  put_u64(out, applied);
  put_u64(out, hash);
  put_u64(out, sessions.size());
  for (const auto& [client, seq] : sessions) {
    put_u64(out, client);
    put_u64(out, seq);
  }
  put_u64(out, executed.size());
  for (const ClientOp& op : executed) {
    put_u64(out, op.client);
    put_u64(out, op.seq);
  }
  return out;
}

std::uint64_t StateMachine::hash_of(std::string_view bytes) { return bytes.empty() ? 0 : get_u64(bytes, 8); }

StateMachine StateMachine::deserialize(std::string_view bytes) {
  StateMachine sm;
  if (bytes.empty()) return sm;  // the bootstrap snapshot at index 0
  sm.applied = get_u64(bytes, 0);
  sm.hash = get_u64(bytes, 8);
  std::size_t at = 16;
  std::uint64_t sessions = get_u64(bytes, at);
  at += 8;
  for (std::uint64_t i = 0; i < sessions; ++i, at += 16) sm.sessions[get_u64(bytes, at)] = get_u64(bytes, at + 8);
  std::uint64_t n = get_u64(bytes, at);
  at += 8;
  sm.executed.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i, at += 16) sm.executed.push_back({get_u64(bytes, at), get_u64(bytes, at + 8)});
  return sm;
}

}  // namespace raftfl::sim
