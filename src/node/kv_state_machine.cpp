#include "raftfl/node/kv_state_machine.hpp"

#include <xxhash.h>

#include <algorithm>
#include <stdexcept>

#include "raftfl/raft/little_endian.hpp"

namespace raftfl::node {
namespace {

// Leading byte of a command; anything else is an opaque payload.
constexpr char kPut = 'P';
constexpr char kSessionPut = 'S';
constexpr std::size_t kSessionHeader = 1 + 8 + 8 + 4;

}  // namespace

std::string KvStateMachine::encode_put(std::string_view key, std::string_view value) {
  std::string out;
  out.reserve(1 + 4 + key.size() + value.size());
  out.push_back(kPut);
  raft::put_le<std::uint32_t>(out, static_cast<std::uint32_t>(key.size()));
  out.append(key);
  out.append(value);
  return out;
}

std::string KvStateMachine::encode_session_put(std::uint64_t client, std::uint64_t seq, std::string_view key,
                                               std::string_view value) {
  std::string out;
  out.reserve(kSessionHeader + key.size() + value.size());
  out.push_back(kSessionPut);
  raft::put_le<std::uint64_t>(out, client);
  raft::put_le<std::uint64_t>(out, seq);
  raft::put_le<std::uint32_t>(out, static_cast<std::uint32_t>(key.size()));
  out.append(key);
  out.append(value);
  return out;
}

bool KvStateMachine::is_repeat(std::uint64_t client, std::uint64_t seq, raft::Index index) {
  auto [it, fresh] = sessions_.try_emplace(client);
  if (!fresh && seq <= it->second.seq) {
    ++duplicates_;
    return true;
  }
  it->second = {seq, index};
  if (sessions_.size() > kMaxSessions) {
    auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
      return a.second.last_index < b.second.last_index;
    });
    sessions_.erase(oldest);
  }
  return false;
}

void KvStateMachine::apply(raft::Index index, std::string_view data) {
  applied_ = index;
  if (data.size() >= 5 && data[0] == kPut) {
    const auto key_size = raft::get_le<std::uint32_t>(data.data() + 1);
    if (key_size > data.size() - 5) return;  // not a command of ours
    put(std::string(data.substr(5, key_size)), std::string(data.substr(5 + key_size)));
  } else if (data.size() >= kSessionHeader && data[0] == kSessionPut) {
    const auto client = raft::get_le<std::uint64_t>(data.data() + 1);
    const auto seq = raft::get_le<std::uint64_t>(data.data() + 9);
    const auto key_size = raft::get_le<std::uint32_t>(data.data() + 17);
    if (key_size > data.size() - kSessionHeader) return;
    if (is_repeat(client, seq, index)) return;
    put(std::string(data.substr(kSessionHeader, key_size)), std::string(data.substr(kSessionHeader + key_size)));
  }
}

std::string KvStateMachine::snapshot() const {
  std::string out;
  raft::put_le<std::uint64_t>(out, map_.size());
  for (const auto& [k, v] : map_) {
    raft::put_le<std::uint32_t>(out, static_cast<std::uint32_t>(k.size()));
    raft::put_le<std::uint32_t>(out, static_cast<std::uint32_t>(v.size()));
    out.append(k);
    out.append(v);
  }
  // The sessions follow the map (a snapshot of a version without sessions ends here).
  raft::put_le<std::uint64_t>(out, sessions_.size());
  for (const auto& [client, session] : sessions_) {
    raft::put_le<std::uint64_t>(out, client);
    raft::put_le<std::uint64_t>(out, session.seq);
    raft::put_le<std::uint64_t>(out, session.last_index);
  }
  return out;
}

void KvStateMachine::restore(raft::Index index, std::string_view data) {
  std::map<std::string, std::string, std::less<>> map;
  std::map<std::uint64_t, Session> sessions;
  if (!data.empty()) {
    if (data.size() < 8) throw std::runtime_error("key/value snapshot: truncated header");
    const auto count = raft::get_le<std::uint64_t>(data.data());
    std::size_t pos = 8;
    for (std::uint64_t i = 0; i < count; ++i) {
      if (data.size() - pos < 8) throw std::runtime_error("key/value snapshot: truncated at entry " + std::to_string(i));
      const auto ks = raft::get_le<std::uint32_t>(data.data() + pos);
      const auto vs = raft::get_le<std::uint32_t>(data.data() + pos + 4);
      pos += 8;
      if (data.size() - pos < std::size_t{ks} + vs)
        throw std::runtime_error("key/value snapshot: truncated at entry " + std::to_string(i));
      map.emplace(std::string(data.substr(pos, ks)), std::string(data.substr(pos + ks, vs)));
      pos += std::size_t{ks} + vs;
    }
    if (pos < data.size()) {
      if (data.size() - pos < 8) throw std::runtime_error("key/value snapshot: truncated session count");
      const auto count_sessions = raft::get_le<std::uint64_t>(data.data() + pos);
      pos += 8;
      if (count_sessions > (data.size() - pos) / 24) throw std::runtime_error("key/value snapshot: truncated sessions");
      for (std::uint64_t i = 0; i < count_sessions; ++i, pos += 24) {
        const auto* p = data.data() + pos;
        sessions.emplace(raft::get_le<std::uint64_t>(p),
                         Session{raft::get_le<std::uint64_t>(p + 8), raft::get_le<std::uint64_t>(p + 16)});
      }
    }
    if (pos != data.size()) throw std::runtime_error("key/value snapshot: trailing bytes");
  }
  map_ = std::move(map);
  sessions_ = std::move(sessions);
  applied_ = index;
}

std::optional<std::string> KvStateMachine::get(const std::string& key) const {
  auto it = map_.find(key);
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

std::uint64_t KvStateMachine::digest() const {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  for (const auto& [k, v] : map_) {
    const std::uint32_t sizes[2] = {static_cast<std::uint32_t>(k.size()), static_cast<std::uint32_t>(v.size())};
    XXH3_64bits_update(state, sizes, sizeof(sizes));
    XXH3_64bits_update(state, k.data(), k.size());
    XXH3_64bits_update(state, v.data(), v.size());
  }
  const auto h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return h;
}

}  // namespace raftfl::node
