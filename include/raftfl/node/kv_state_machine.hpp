#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "raftfl/raft/types.hpp"

namespace raftfl::node {

// The replicated state machine until the GossipFL control log replaces it: a key/value
// map that tests and the benchmark write through Raft. Deterministic: every node that
// applies the same entries holds the same map and the same digest.
class KvStateMachine {
 public:
  // A put command as it travels in a log entry.
  static std::string encode_put(std::string_view key, std::string_view value);

  // Applies one committed normal entry. Entries that are not commands (the benchmark's
  // opaque payloads) only count towards applied().
  void apply(raft::Index index, std::string_view data);
  std::string snapshot() const;
  // Replaces the state with a snapshot taken at `index`; throws std::runtime_error on a
  // malformed snapshot.
  void restore(raft::Index index, std::string_view data);

  std::optional<std::string> get(const std::string& key) const;
  std::size_t size() const { return map_.size(); }
  raft::Index applied() const { return applied_; }
  // Order-sensitive hash of the whole map: equal digests at equal applied indexes mean
  // equal states.
  std::uint64_t digest() const;

 private:
  std::map<std::string, std::string, std::less<>> map_;
  raft::Index applied_ = 0;
};

}  // namespace raftfl::node
