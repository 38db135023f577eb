#include "raftfl/node/kv_state_machine.hpp"

#include <xxhash.h>

#include <stdexcept>

#include "raftfl/raft/little_endian.hpp"

namespace raftfl::node {
namespace {

// Leading byte of a command; anything else is an opaque payload.
constexpr char kPut = 'P';

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

void KvStateMachine::apply(raft::Index index, std::string_view data) {
  applied_ = index;
  if (data.size() < 5 || data[0] != kPut) return;
  const auto key_size = raft::get_le<std::uint32_t>(data.data() + 1);
  if (key_size > data.size() - 5) return;  // not a command of ours
  std::string key(data.substr(5, key_size));
  std::string value(data.substr(5 + key_size));
  map_.insert_or_assign(std::move(key), std::move(value));
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
  return out;
}

void KvStateMachine::restore(raft::Index index, std::string_view data) {
  std::map<std::string, std::string, std::less<>> map;
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
    if (pos != data.size()) throw std::runtime_error("key/value snapshot: trailing bytes");
  }
  map_ = std::move(map);
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
