#include "raftfl/raft/message_bounds.hpp"

namespace raftfl::raft {

const char* message_out_of_bounds(const Message& m, Term current_term, Term max_term_ahead) {
  if (m.term > kMaxTerm) return "term above 2^62";
  if (m.term > current_term && m.term - current_term > max_term_ahead) return "term too far ahead of ours";
  if (m.index > kMaxIndex || m.commit > kMaxIndex || m.reject_hint > kMaxIndex) return "index above 2^62";
  // Every term a message names is that of an entry in its sender's log (or snapshot),
  // and a log holds no entry from a term later than its owner's.
  if (m.log_term > m.term) return "log term after the message's term";
  if (!m.entries.empty()) {
    if (m.entries.front().index != m.index + 1) return "entries do not follow the message's index";
    if (m.entries.back().index > kMaxIndex) return "index above 2^62";
    Term previous = m.log_term;
    for (const auto& e : m.entries) {
      // Terms never decrease along a log.
      if (e.term < previous || e.term > m.term) return "entry terms out of order";
      previous = e.term;
    }
  }
  if (m.snapshot) {
    if (m.snapshot->meta.index > kMaxIndex) return "snapshot index above 2^62";
    if (m.snapshot->meta.term > m.term) return "snapshot term after the message's term";
  }
  return nullptr;
}

}  // namespace raftfl::raft
