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
  // A put in a client session (Raft dissertation section 6.3): the state machine applies
  // each (client, seq) at most once, so that a client may retry a put whose outcome it
  // does not know (its leader was deposed) without applying it twice. A client numbers
  // its puts 1, 2, 3, ... and has one outstanding at a time.
  static std::string encode_session_put(std::uint64_t client, std::uint64_t seq, std::string_view key,
                                        std::string_view value);
  // Sessions kept; past it the least recently active one is forgotten (a retry of its
  // last put would then apply again). Deterministic: every node forgets the same one.
  static constexpr std::size_t kMaxSessions = 10000;

  // Applies one committed normal entry. Entries that are not commands (the benchmark's
  // opaque payloads) only count towards applied().
  void apply(raft::Index index, std::string_view data);
  std::string snapshot() const;
  // Replaces the state with a snapshot taken at `index`; throws std::runtime_error on a
  // malformed snapshot.
  void restore(raft::Index index, std::string_view data);

  std::optional<std::string> get(const std::string& key) const;
  std::size_t size() const { return map_.size(); }
  std::size_t sessions() const { return sessions_.size(); }
  // Puts skipped as repeats of a (client, seq) already applied.
  std::uint64_t duplicates() const { return duplicates_; }
  raft::Index applied() const { return applied_; }
  // Order-sensitive hash of the whole map: equal digests at equal applied indexes mean
  // equal states.
  std::uint64_t digest() const;

 private:
  struct Session {
    std::uint64_t seq = 0;         // the last applied
    raft::Index last_index = 0;    // where, for forgetting the least recently active
  };
  void put(std::string key, std::string value) { map_.insert_or_assign(std::move(key), std::move(value)); }
  bool is_repeat(std::uint64_t client, std::uint64_t seq, raft::Index index);

  std::map<std::string, std::string, std::less<>> map_;
  std::map<std::uint64_t, Session> sessions_;
  raft::Index applied_ = 0;
  std::uint64_t duplicates_ = 0;
};

}  // namespace raftfl::node
