// A seeded discrete-event simulation of a Raft cluster: virtual time, a network that
// loses, duplicates, delays and reorders, partitions, crashes that lose whatever was not
// persisted, and a nemesis that changes membership, transfers leadership and compacts
// logs. Every durable write, commit and apply goes past the Checker as it happens, and
// after every event the checker looks at each leader's log as the engine holds it.
#include "simulation.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <optional>
#include <set>
#include <array>

#include "raftfl/raft/raft.hpp"
#include "raftfl/raft/voter_policy.hpp"
#include "state_machine.hpp"

namespace raftfl::sim {
namespace {

using raft::Entry;
using raft::Message;
using raft::Raft;
using raft::Role;

constexpr std::int64_t kTickMs = 10;
// A correct run needs well under a million events; a runaway engine must fail, not hang.
constexpr std::uint64_t kMaxEvents = 20'000'000;

// A Ready handed to the disk, with what the driver knew when it took it.
struct InFlightWrite {
  bool was_leader = false;
  Term term = 0;
  raft::Ready ready;
};

struct Node {
  NodeId id = 0;
  bool up = false;
  std::uint64_t incarnation = 0;
  std::unique_ptr<Raft> raft;
  StateMachine sm;  // volatile: rebuilt from the snapshot and the log on restart
  bool crash_at_next_write = false;  // crash between sending and persisting its next write
  std::optional<InFlightWrite> writing;  // a Ready whose writes the disk has not finished

  // What the node has made durable; all a restart gets back.
  raft::HardState hard_state;
  std::shared_ptr<const raft::Snapshot> snapshot;
  std::uint64_t snapshot_hash = 0;
  std::vector<Entry> entries;
  std::vector<std::uint64_t> hashes;  // prefix hash of each stored entry

  // The term this incarnation was last seen leading: a leader is recorded when its engine
  // becomes one, whether or not it lives to persist anything.
  Term led_term = 0;
  // Prefix hashes of the engine's in-memory log, durable or not, kept between checks so
  // that checking a leader after every event does not rehash its log. Entries are matched
  // by their shared payload (the cache holds references, so no other payload can take an
  // address it compares against). Within one term a leader's log only grows, so what was
  // matched up to `validated` is not walked again until the term changes or the log
  // shrinks; a leader that rewrote its own entries in place would still be caught where
  // they reach a disk (log matching) or a state machine.
  struct MemoryLog {
    std::shared_ptr<const raft::Snapshot> snapshot;
    std::uint64_t base_hash = 0;
    std::vector<Entry> entries;
    std::vector<std::uint64_t> hashes;
    Term term = 0;
    Index validated = 0;
    Index last_seen = 0;
  } memory;

  // A joining node holds no snapshot at all until the leader sends one.
  Index base() const { return snapshot ? snapshot->meta.index : 0; }
  Index stored_last() const { return base() + entries.size(); }
  std::uint64_t hash_at(Index index) const {
    if (index == base()) return snapshot_hash;
    return hashes.at(index - base() - 1);
  }
};

// A client with a session (Raft dissertation section 6.3): one request at a time, numbered
// in sequence; a request whose outcome it cannot know (the leader crashed, lost its
// leadership or did not answer in time) is sent again, with the same number, to whichever
// node leads then.
struct Client {
  std::uint64_t id = 0;
  std::uint64_t seq = 0;     // the request under way, or the last one acknowledged
  bool pending = false;      // `seq` not yet acknowledged
  bool in_flight = false;    // an attempt of it awaits an answer from `node`
  NodeId node = 0;
  std::uint64_t incarnation = 0;
  Term term = 0;             // the term `node` led when it accepted the attempt
  std::int64_t sent_at = 0;
  std::int64_t deadline = 0;
  std::int64_t retry_at = 0;
};

enum class EventKind { kTick, kDeliver, kNemesis, kClient, kRestart, kWriteDone, kPolicy };

struct Event {
  std::int64_t time;
  std::uint64_t seq;
  EventKind kind;
  NodeId node = 0;
  std::uint64_t incarnation = 0;
  Message message;
};

struct EventLater {
  bool operator()(const Event& a, const Event& b) const {
    return a.time != b.time ? a.time > b.time : a.seq > b.seq;
  }
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& options) : options_(options), rng_(options.seed * 0x9e3779b97f4a7c15ULL + 1) {}

  SimResult run();

 private:
  // Set-up and node life cycle.
  void add_node(NodeId id, std::shared_ptr<const raft::Snapshot> bootstrap);
  void start(Node& node);
  void crash(Node& node);
  raft::Options raft_options(NodeId id);

  // The driver: one Ready at a time, in the order the engine's contract asks.
  void drive(Node& node);
  // A node's engine took an input: is it a new leader?
  void observe(Node& node);
  // After every event: the engine's invariants, and every leader's log against what was
  // committed in earlier terms.
  void check_after_event(Node* touched);
  std::uint64_t memory_hash_at(Node& node, Index index);
  bool may_crash();
  void complete(Node& node, const InFlightWrite& write);
  void persist(Node& node, const raft::Ready& rd, bool was_leader);
  void apply(Node& node, const raft::Ready& rd);
  void maybe_compact(Node& node);

  // Network.
  void send(const Message& m);
  bool link_up(NodeId from, NodeId to) const;

  // Workload and nemesis.
  void client_step();
  bool send_request(Client& client, Node& leader);
  void expire_attempts();
  void answer(Node& node, ClientOp op);
  void nemesis_step();
  void heal();
  // The voter policy at the current leader, as a node's MembershipManager runs it.
  void policy_step();
  // Crash a voter for good and check that the policy brings the voter set back.
  void replace_lost_voter();
  Node* current_leader();
  std::vector<NodeId> members();
  std::string describe_members();

  void schedule(std::int64_t at, EventKind kind, NodeId node = 0, Message m = {});
  void handle(Event& e);
  bool run_until(std::int64_t end, const std::function<bool()>& done);
  std::uint64_t random(std::uint64_t lo, std::uint64_t hi) {  // [lo, hi]
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng_);
  }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  void trace(const char* fmt, auto... args) {
    if (!options_.trace) return;
    std::printf("%8lld ms  ", static_cast<long long>(now_));
    std::printf(fmt, args...);
    std::printf("\n");
  }

  SimOptions options_;
  std::mt19937_64 rng_;
  Checker checker_;
  SimStats stats_;
  std::map<NodeId, Node> nodes_;
  std::vector<Node*> node_list_;  // the same nodes, for the checks after every event
  std::vector<Event> queue_;
  std::uint64_t next_seq_ = 0;
  std::int64_t now_ = 0;
  bool failed_ = false;

  // Network state set by the nemesis.
  std::set<std::pair<NodeId, NodeId>> blocked_;  // directed links that lose everything
  double drop_rate_ = 0;
  double duplicate_rate_ = 0;
  std::int64_t max_delay_ms_ = 3;

  // Per seed: how often the nemesis strikes (some seeds are calm, some relentless).
  std::uint64_t nemesis_gap_ms_ = 400;
  // Per seed: 0 writes synchronously; otherwise each write takes 1 to this many ms.
  std::uint64_t disk_latency_ms_ = 0;
  // The nemesis's moves (the cases of nemesis_step), drawn only from the enabled faults so
  // that a run with one fault exercises it as hard as it can.
  std::vector<int> actions_;
  bool clients_on_ = true;
  bool nemesis_on_ = true;
  // Per seed: how often a fresh leader crashes after sending its first Ready's messages
  // and before persisting it. That Ready is the first to carry the new term, and with a
  // single voter it is also the first to carry entries of it.
  double aim_at_fresh_leaders_ = 0;
  // Per seed: the fewest voters membership changes may leave (one, some seeds: a lone
  // voter wins its election in the step that starts it).
  std::size_t min_voters_ = 1;
  std::vector<Client> clients_;
  std::uint64_t next_read_ = 1;
  Index max_applied_ = 0;  // the highest index any node applied: what clients know committed
  NodeId next_node_id_ = 1;
  std::int64_t last_ack_sent_at_ = -1;  // when the latest acknowledged attempt was sent
  bool sabotaged_ = false;
  // Per node: compact once this many entries are applied past the snapshot.
  std::map<NodeId, Index> compact_every_;
  // (receiver, sender) -> when a message from sender was last delivered: what a leader
  // judges a member's health by.
  std::map<std::pair<NodeId, NodeId>, std::int64_t> last_heard_;
  std::int64_t policy_since_ = 0;  // silence counts from here at the earliest
  bool policy_on_ = false;
};

constexpr std::int64_t kFailureTimeoutMs = 1000;
constexpr std::int64_t kPolicyEveryMs = 100;

raft::Options Simulation::raft_options(NodeId id) {
  raft::Options o;
  o.id = id;
  o.seed = options_.seed * 1000003 + id;
  // Small limits make batching, flow control and message splitting happen often.
  // One entry per message half the time: an old-term entry and the new leader's no-op
  // then travel apart, the window in which Figure 8's unsafe commit could happen.
  o.max_entries_per_message = chance(0.5) ? 1 : random(2, 64);
  o.max_bytes_per_message = random(64, 4096);
  o.max_inflight_messages = random(1, 16);
  return o;
}

void Simulation::add_node(NodeId id, std::shared_ptr<const raft::Snapshot> bootstrap) {
  Node& n = nodes_[id];
  node_list_.push_back(&n);
  n.id = id;
  n.snapshot = bootstrap;
  n.snapshot_hash = 0;
  compact_every_[id] = random(4, 40);
  start(n);
}

void Simulation::start(Node& node) {
  raft::PersistedState state{node.hard_state, node.snapshot, node.entries};
  node.raft = std::make_unique<Raft>(raft_options(node.id), std::move(state));
  node.sm = node.snapshot ? StateMachine::deserialize(node.snapshot->data.view()) : StateMachine{};
  node.up = true;
  node.crash_at_next_write = false;
  node.writing.reset();
  node.led_term = 0;
  node.memory = {};
  ++node.incarnation;
  schedule(now_ + static_cast<std::int64_t>(random(1, kTickMs)), EventKind::kTick, node.id);
  trace("node %llu starts (term %llu, %zu entries after snapshot %llu)", (unsigned long long)node.id,
        (unsigned long long)node.hard_state.term, node.entries.size(), (unsigned long long)node.base());
}

void Simulation::crash(Node& node) {
  node.up = false;
  node.raft.reset();
  node.writing.reset();  // the disk never finished it
  node.sm = StateMachine{};
  ++node.incarnation;
  ++stats_.crashes;
  trace("node %llu crashes", (unsigned long long)node.id);
}

void Simulation::schedule(std::int64_t at, EventKind kind, NodeId node, Message m) {
  std::uint64_t incarnation = 0;
  if (auto it = nodes_.find(node); it != nodes_.end()) incarnation = it->second.incarnation;
  queue_.push_back(Event{at, next_seq_++, kind, node, incarnation, std::move(m)});
  std::push_heap(queue_.begin(), queue_.end(), EventLater{});
}

void Simulation::send(const Message& m) {
  ++stats_.messages;
  if (!nodes_.count(m.to) || chance(drop_rate_)) return;
  int copies = chance(duplicate_rate_) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    schedule(now_ + static_cast<std::int64_t>(random(1, static_cast<std::uint64_t>(max_delay_ms_))),
             EventKind::kDeliver, m.to, m);
  }
}

bool Simulation::link_up(NodeId from, NodeId to) const { return !blocked_.count({from, to}); }

void Simulation::drive(Node& node) {
  // A correct engine quiesces after a handful of Readies; one that never does would hang
  // the simulation instead of failing it.
  for (int readies = 0; node.up && !node.writing && node.raft->has_ready(); ++readies) {
    if (readies == 10000) {
      checker_.on_engine_error("node " + std::to_string(node.id) + " produced 10000 Readies without quiescing");
      failed_ = true;
      return;
    }
    InFlightWrite w{node.raft->role() == Role::kLeader, node.raft->term(), node.raft->ready()};
    for (const Message& m : w.ready.messages) send(m);
    bool writes = w.ready.hard_state || !w.ready.entries.empty() || w.ready.snapshot;
    bool fresh_leader = w.ready.soft_state && w.ready.soft_state->role == Role::kLeader;
    bool aimed = writes && fresh_leader && aim_at_fresh_leaders_ > 0 && may_crash() && chance(aim_at_fresh_leaders_);
    if ((node.crash_at_next_write || aimed) && writes) {
      // Crash between sending and persisting: what could leave before the persist is out,
      // the write (a vote, the leader's own copy of its entries) is lost. Back soon, while
      // the election or the replication it was part of is still going on.
      if (aimed) {
        ++stats_.aimed_crashes;
        trace("node %llu crashes before persisting its first Ready as leader of term %llu",
              (unsigned long long)node.id, (unsigned long long)w.term);
      }
      crash(node);
      schedule(now_ + static_cast<std::int64_t>(random(10, 300)), EventKind::kRestart, node.id);
      return;
    }
    if (writes && disk_latency_ms_ > 0) {
      // The disk takes its time, as a real one does; the node keeps receiving meanwhile
      // (the engine allows step() between ready() and advance()), and a crash before the
      // write completes loses it.
      node.writing = std::move(w);
      schedule(now_ + static_cast<std::int64_t>(random(1, disk_latency_ms_)), EventKind::kWriteDone, node.id);
      return;
    }
    complete(node, w);
  }
}

void Simulation::complete(Node& node, const InFlightWrite& w) {
  const raft::Ready& rd = w.ready;
  persist(node, rd, w.was_leader);
  if (failed_) return;
  for (const Message& m : rd.messages_after_persist) {
    if (options_.trace && (m.type == raft::MessageType::kVoteResp || m.type == raft::MessageType::kPreVoteResp))
      trace("node %llu %s %s to %llu for term %llu", (unsigned long long)node.id, m.reject ? "refuses" : "grants",
            raft::to_string(m.type), (unsigned long long)m.to, (unsigned long long)m.term);
    send(m);
  }
  apply(node, rd);
  for (const raft::ReadState& rs : rd.read_states) {
    if (auto id = decode_read(rs.context.view())) checker_.on_read_answered(node.id, *id, rs.index);
    ++stats_.reads;
  }
  node.raft->advance(rd);
  maybe_compact(node);
}

void Simulation::persist(Node& node, const raft::Ready& rd, bool was_leader) {
  if (rd.snapshot) {
    const raft::SnapshotMeta& meta = rd.snapshot->meta;
    if (node.stored_last() > meta.index) checker_.on_log_truncated(node.id, meta.index + 1, was_leader, node.raft->term());
    node.snapshot = rd.snapshot;
    node.snapshot_hash = StateMachine::hash_of(rd.snapshot->data.view());
    node.entries.clear();
    node.hashes.clear();
    ++stats_.snapshots_installed;
  }
  if (!rd.entries.empty()) {
    Index first = rd.entries.front().index;
    if (first <= node.stored_last()) {
      checker_.on_log_truncated(node.id, first, was_leader, node.raft->term());
      std::size_t keep = first - node.base() - 1;
      node.entries.resize(keep);
      node.hashes.resize(keep);
    }
    trace("node %llu persists entries %llu..%llu (term %llu)", (unsigned long long)node.id, (unsigned long long)first,
          (unsigned long long)rd.entries.back().index, (unsigned long long)rd.entries.back().term);
    for (Entry e : rd.entries) {
      if (options_.sabotage == Sabotage::kCorruptFollowerEntry && !sabotaged_ && !was_leader &&
          e.type == raft::EntryType::kNormal) {
        e.data = raft::Payload(std::string(e.data.view()) + "!");
        sabotaged_ = true;
      }
      if (e.index != node.stored_last() + 1) {
        checker_.on_engine_error("node " + std::to_string(node.id) + " was asked to persist a gap at " +
                                 std::to_string(e.index));
        failed_ = true;
        return;
      }
      std::uint64_t h = extend_prefix_hash(node.hash_at(e.index - 1), e);
      node.entries.push_back(e);
      node.hashes.push_back(h);
      checker_.on_log_entry(node.id, e.index, e.term, h);
    }
  }
  if (rd.hard_state) {
    Index old_commit = node.hard_state.commit;
    node.hard_state = *rd.hard_state;
    Index commit = node.hard_state.commit;
    if (commit > old_commit || rd.snapshot) {
      trace("node %llu commits %llu at term %llu", (unsigned long long)node.id, (unsigned long long)commit,
            (unsigned long long)node.hard_state.term);
    }
    if (commit > node.stored_last()) {
      checker_.on_engine_error("node " + std::to_string(node.id) + " persisted commit index " + std::to_string(commit) +
                               " beyond its durable log, which ends at " + std::to_string(node.stored_last()));
      failed_ = true;
      return;
    }
    // Every index the commit passes, not only where it stops: another node may have
    // stopped at any of them, and prefix hashes compare two logs only at a shared index.
    // Below the snapshot only its own index is left to compare.
    Index from = rd.snapshot ? node.base() : std::max(old_commit + 1, node.base());
    for (Index i = from; i <= commit; ++i) checker_.on_commit(node.id, node.hard_state.term, i, node.hash_at(i));
  }
}

void Simulation::apply(Node& node, const raft::Ready& rd) {
  if (rd.snapshot) {
    node.sm = StateMachine::deserialize(rd.snapshot->data.view());
    checker_.on_apply(node.id, node.sm.applied, node.sm.hash);
  }
  for (const Entry& e : rd.committed_entries) {
    auto outcome = node.sm.apply(e);
    checker_.on_apply(node.id, e.index, node.sm.hash);
    max_applied_ = std::max(max_applied_, e.index);
    if (!outcome) continue;
    if (!outcome->executed) {
      ++stats_.duplicates;
      if (options_.sabotage == Sabotage::kExecuteDuplicates) node.sm.executed.push_back(outcome->op);
    }
    answer(node, outcome->op);
  }
}

void Simulation::answer(Node& node, ClientOp op) {
  // Only the node the attempt went to knows the client is waiting, and only until it
  // crashes; a duplicate is answered too, from the session, as the first execution was.
  if (op.client == 0 || op.client > clients_.size()) return;
  Client& c = clients_[op.client - 1];
  if (!c.pending || !c.in_flight || c.seq != op.seq || c.node != node.id || c.incarnation != node.incarnation) return;
  c.pending = false;
  c.in_flight = false;
  ++stats_.acknowledged;
  checker_.on_acknowledged(op);
  last_ack_sent_at_ = std::max(last_ack_sent_at_, c.sent_at);
}

void Simulation::maybe_compact(Node& node) {
  if (!options_.faults.has(Fault::kCompact)) return;
  if (node.sm.applied < node.raft->log().snapshot_index() + compact_every_[node.id]) return;
  std::string image = node.sm.serialize();
  if (options_.sabotage == Sabotage::kForgetSessions) {
    StateMachine forgetful = node.sm;
    forgetful.sessions.clear();
    image = forgetful.serialize();
  }
  if (!node.raft->compact(node.sm.applied, raft::Payload(std::move(image)))) return;
  // The snapshot is durable before the log before it goes.
  Index index = node.sm.applied;
  std::size_t drop = index - node.base();
  node.snapshot = node.raft->snapshot();
  node.snapshot_hash = node.sm.hash;
  node.entries.erase(node.entries.begin(), node.entries.begin() + static_cast<std::ptrdiff_t>(drop));
  node.hashes.erase(node.hashes.begin(), node.hashes.begin() + static_cast<std::ptrdiff_t>(drop));
  ++stats_.compactions;
}

Node* Simulation::current_leader() {
  std::vector<Node*> leaders;
  for (auto& [id, n] : nodes_) {
    if (n.up && n.raft->role() == Role::kLeader) leaders.push_back(&n);
  }
  if (leaders.empty()) return nullptr;
  // Prefer the one with the highest term: an old leader may not know it was deposed yet.
  return *std::max_element(leaders.begin(), leaders.end(),
                           [](Node* a, Node* b) { return a->raft->term() < b->raft->term(); });
}

std::vector<NodeId> Simulation::members() {
  Node* leader = current_leader();
  if (!leader) return {};
  std::vector<NodeId> out = leader->raft->config().voters;
  for (NodeId l : leader->raft->config().learners) out.push_back(l);
  return out;
}

// Where each member stands, as the leader sees it: for diagnosing liveness failures.
std::string Simulation::describe_members() {
  Node* leader = current_leader();
  if (!leader) return " (no leader)";
  std::string out = " (leader " + std::to_string(leader->id) + " commit " +
                    std::to_string(leader->raft->log().committed()) + ";";
  for (NodeId id : members()) {
    const Node& n = nodes_[id];
    out += " node " + std::to_string(id) + (n.up ? "" : " down") + " applied " + std::to_string(n.sm.applied);
    if (const raft::Progress* pr = leader->raft->progress(id)) {
      out += std::string(" ") + raft::to_string(pr->state) + " match " + std::to_string(pr->match) + " next " +
             std::to_string(pr->next) + " inflight " + std::to_string(pr->inflights.count()) +
             (pr->paused() ? " paused" : "");
    }
    out += ";";
  }
  return out + ")";
}

void Simulation::client_step() {
  if (!clients_on_) return;
  schedule(now_ + static_cast<std::int64_t>(random(2, 25)), EventKind::kClient);
  expire_attempts();
  if (chance(0.3)) {
    // A linearizable read, on any node: followers forward it to the leader they know.
    std::vector<Node*> up;
    for (auto& [nid, n] : nodes_) {
      if (n.up) up.push_back(&n);
    }
    if (up.empty()) return;
    Node& reader = *up[random(0, up.size() - 1)];
    std::uint64_t read = next_read_++;
    checker_.on_read_issued(read, max_applied_);
    if (reader.raft->read_index(raft::Payload(encode_read(read)))) drive(reader);
    return;
  }
  std::vector<Client*> ready;
  for (Client& c : clients_) {
    if (!c.in_flight && (!c.pending || c.retry_at <= now_)) ready.push_back(&c);
  }
  if (ready.empty()) return;
  // Clients that have not heard of a newer leader still write to the old one: deposed
  // leaders then grow entries that must never commit.
  std::vector<Node*> leaders;
  for (auto& [nid, n] : nodes_) {
    if (n.up && n.raft->role() == Role::kLeader) leaders.push_back(&n);
  }
  if (leaders.empty()) return;
  Node* leader = chance(0.5) ? current_leader() : leaders[random(0, leaders.size() - 1)];
  if (send_request(*ready[random(0, ready.size() - 1)], *leader)) drive(*leader);
}

bool Simulation::send_request(Client& c, Node& leader) {
  bool retry = c.pending;
  if (!c.pending) {
    c.pending = true;
    ++c.seq;
    ++stats_.requests;
    checker_.on_request({c.id, c.seq});
  }
  auto result = leader.raft->propose(raft::Payload(encode_request({c.id, c.seq}, options_.entry_bytes)));
  if (!result.ok()) {
    c.retry_at = now_ + static_cast<std::int64_t>(random(5, 50));
    return false;
  }
  ++stats_.proposals;
  if (retry) {
    ++stats_.retries;
    trace("client %llu retries seq %llu at node %llu, index %llu", (unsigned long long)c.id, (unsigned long long)c.seq,
          (unsigned long long)leader.id, (unsigned long long)result.index);
  }
  c.in_flight = true;
  c.node = leader.id;
  c.incarnation = leader.incarnation;
  c.term = result.term;
  c.sent_at = now_;
  c.deadline = now_ + static_cast<std::int64_t>(random(100, 1000));
  return true;
}

void Simulation::expire_attempts() {
  for (Client& c : clients_) {
    if (!c.in_flight) continue;
    const Node& n = nodes_.at(c.node);
    // A crash closes the connection; a deposed leader says it no longer leads; a silent
    // one times out. In every case the request may or may not have committed.
    bool gone = !n.up || n.incarnation != c.incarnation;
    bool deposed = !gone && (n.raft->role() != Role::kLeader || n.raft->term() != c.term);
    if (!gone && !deposed && now_ < c.deadline) continue;
    c.in_flight = false;
    c.retry_at = now_ + static_cast<std::int64_t>(random(0, 100));
  }
}

void Simulation::observe(Node& node) {
  if (!node.up || node.raft->role() != Role::kLeader || node.led_term == node.raft->term()) return;
  node.led_term = node.raft->term();
  ++stats_.elections;
  if (options_.trace) {
    std::string voters;
    for (NodeId v : node.raft->config().voters) voters += " " + std::to_string(v);
    trace("node %llu leads term %llu with voters%s", (unsigned long long)node.id, (unsigned long long)node.led_term,
          voters.c_str());
  }
  checker_.on_leader(node.id, node.led_term);
  if (!clients_on_) return;
  // Clients left without a leader find the new one at once: their requests reach it in
  // the batch that elected it, before its first Ready (a driver steps everything that
  // arrived before taking one), and with a lone voter that Ready is also its first
  // persist of the new term.
  for (Client& c : clients_) {
    if (!c.in_flight && chance(0.3)) send_request(c, node);
  }
}

bool Simulation::may_crash() {
  if (!nemesis_on_ || !options_.faults.has(Fault::kCrash)) return false;
  std::size_t down = 0;
  for (auto& [id, n] : nodes_) down += n.up ? 0 : 1;
  // A minority at most, so the chaos still lets entries commit.
  return down < (static_cast<std::size_t>(options_.voters) - 1) / 2 + 1;
}

std::uint64_t Simulation::memory_hash_at(Node& node, Index index) {
  Node::MemoryLog& m = node.memory;
  const raft::RaftLog& log = node.raft->log();
  const std::shared_ptr<const raft::Snapshot>& snap = node.raft->snapshot();
  if (m.snapshot != snap) {
    Index old_base = m.snapshot ? m.snapshot->meta.index : 0;
    Index base = snap->meta.index;
    std::uint64_t base_hash = StateMachine::hash_of(snap->data.view());
    // A compaction keeps the hashes after its index; anything else starts over.
    if (m.snapshot && base > old_base && base - old_base <= m.entries.size() &&
        m.hashes[base - old_base - 1] == base_hash) {
      auto drop = static_cast<std::ptrdiff_t>(base - old_base);
      m.entries.erase(m.entries.begin(), m.entries.begin() + drop);
      m.hashes.erase(m.hashes.begin(), m.hashes.begin() + drop);
    } else {
      m.entries.clear();
      m.hashes.clear();
      m.validated = 0;
    }
    m.snapshot = snap;
    m.base_hash = base_hash;
  }
  Index base = snap->meta.index;
  if (m.term != node.raft->term() || log.last_index() < m.last_seen) {
    m.term = node.raft->term();
    m.validated = 0;
  }
  m.last_seen = log.last_index();
  for (Index i = std::max(base, m.validated) + 1; i <= index; ++i) {
    std::size_t j = i - base - 1;
    const Entry& e = log.at(i);
    if (j < m.entries.size()) {
      const Entry& c = m.entries[j];
      if (c.term == e.term && c.type == e.type && c.data.view().data() == e.data.view().data() &&
          c.data.size() == e.data.size())
        continue;
      m.entries.resize(j);
      m.hashes.resize(j);
    }
    m.hashes.push_back(extend_prefix_hash(j == 0 ? m.base_hash : m.hashes[j - 1], e));
    m.entries.push_back(e);
  }
  m.validated = std::max(m.validated, index);
  std::uint64_t h = index == base ? m.base_hash : m.hashes[index - base - 1];
  return options_.sabotage == Sabotage::kMisreportLeaderLog ? h ^ 1 : h;
}

void Simulation::check_after_event(Node* touched) {
  for (Node* n : node_list_) {
    if (!n->up) continue;
    if (!touched || touched == n) {
      n->raft->check_invariants();
      // Every peer here is correct: a message the engine finds impossible is a bug in the
      // bounds (message_bounds.hpp) or in the sender.
      if (n->raft->dropped_messages() != 0)
        throw raft::InvariantViolation(std::string("node ") + std::to_string(n->id) +
                                       " dropped a correct peer's message: " + n->raft->last_drop_reason());
    }
    if (n->raft->role() != Role::kLeader) continue;
    const raft::RaftLog& log = n->raft->log();
    checker_.check_leader_log(n->id, n->raft->term(), log.snapshot_index(), log.last_index(),
                              [this, n](Index i) { return memory_hash_at(*n, i); });
  }
}

void Simulation::nemesis_step() {
  if (!nemesis_on_) return;
  schedule(now_ + static_cast<std::int64_t>(random(nemesis_gap_ms_ / 4, nemesis_gap_ms_)), EventKind::kNemesis);
  const FaultSet& f = options_.faults;
  std::vector<NodeId> all;
  for (auto& [id, n] : nodes_) all.push_back(id);
  auto pick = [&](const std::vector<NodeId>& ids) { return ids[random(0, ids.size() - 1)]; };

  switch (actions_[random(0, actions_.size() - 1)]) {
    case 0:
      if (f.has(Fault::kDrop)) drop_rate_ = chance(0.5) ? 0 : std::uniform_real_distribution<double>(0, 0.3)(rng_);
      break;
    case 1:
      if (f.has(Fault::kDuplicate)) duplicate_rate_ = chance(0.5) ? 0 : 0.1;
      break;
    case 2:
      if (f.has(Fault::kDelay)) max_delay_ms_ = chance(0.5) ? 3 : static_cast<std::int64_t>(random(10, 120));
      break;
    case 3:
      if (f.has(Fault::kPartition)) {
        if (!blocked_.empty()) {
          blocked_.clear();
          trace("partitions heal");
        } else {
          std::vector<NodeId> side;
          for (NodeId id : all) {
            if (chance(0.5)) side.push_back(id);
          }
          for (NodeId a : side) {
            for (NodeId b : all) {
              if (std::find(side.begin(), side.end(), b) != side.end()) continue;
              blocked_.insert({a, b});
              blocked_.insert({b, a});
            }
          }
          ++stats_.partitions;
          trace("partition: %zu nodes cut off", side.size());
        }
      }
      break;
    case 4:
      if (f.has(Fault::kAsymmetric)) {
        NodeId a = pick(all), b = pick(all);
        if (a != b) {
          blocked_.insert({a, b});
          ++stats_.partitions;
          trace("link %llu -> %llu fails", (unsigned long long)a, (unsigned long long)b);
        }
      }
      break;
    case 5:
    case 9:
      if (f.has(Fault::kCrash)) {
        std::vector<NodeId> up;
        for (auto& [id, n] : nodes_) {
          if (n.up) up.push_back(id);
        }
        if (up.empty() || !may_crash()) break;
        // Half the time the leader: its unreplicated entries and pending changes are the
        // hardest case (Figure 8 starts with a leader crashing mid-replication).
        Node* leader = current_leader();
        Node& victim = (leader && chance(0.5)) ? *leader : nodes_[pick(up)];
        if (chance(0.3)) {
          victim.crash_at_next_write = true;
          // The election that follows a leader's crash is where a lost vote would matter.
          if (&victim == leader) nodes_[pick(up)].crash_at_next_write = true;
        } else {
          crash(victim);
          schedule(now_ + static_cast<std::int64_t>(random(50, 1500)), EventKind::kRestart, victim.id);
        }
      }
      break;
    case 10:
      if (f.has(Fault::kPartition)) {
        // Cut the leader off alone: the rest elect a new one while it still believes it leads.
        Node* leader = current_leader();
        if (!leader) break;
        for (NodeId other : all) {
          if (other == leader->id) continue;
          blocked_.insert({leader->id, other});
          blocked_.insert({other, leader->id});
        }
        ++stats_.partitions;
        trace("leader %llu isolated", (unsigned long long)leader->id);
      }
      break;
    case 6:
      if (f.has(Fault::kMembership)) {
        Node* leader = current_leader();
        if (!leader) break;
        const raft::Configuration& cfg = leader->raft->config();
        raft::ConfChange change;
        std::uint64_t what = random(0, 3);
        if (what == 0 && cfg.learners.size() < 3) {
          change.type = raft::ConfChangeType::kAddLearner;
          change.node = next_node_id_;
        } else if (what == 1 && !cfg.learners.empty() && cfg.voters.size() < static_cast<std::size_t>(options_.voters) + 2) {
          change.type = raft::ConfChangeType::kPromoteLearner;
          change.node = pick(cfg.learners);
        } else if (what == 2 && cfg.voters.size() + cfg.learners.size() > 1) {
          // A seed allowed a lone voter removes voters first and keeps its learners: they
          // are the ones a lone voter's messages reach.
          std::vector<NodeId> candidates;
          if (min_voters_ > 1 || cfg.voters.size() == 1) candidates = cfg.learners;
          if (cfg.voters.size() > min_voters_)
            candidates.insert(candidates.end(), cfg.voters.begin(), cfg.voters.end());
          if (candidates.empty()) break;
          change.type = raft::ConfChangeType::kRemoveNode;
          change.node = pick(candidates);
        } else if (what == 3 && cfg.voters.size() > std::max<std::size_t>(min_voters_, 1)) {
          // A failed voter's replacement: voter to learner, its log kept.
          change.type = raft::ConfChangeType::kDemoteVoter;
          change.node = pick(cfg.voters);
        } else {
          break;
        }
        if (leader->raft->propose_conf_change(change).ok()) {
          ++stats_.conf_changes;
          trace("leader %llu proposes membership change %d of node %llu", (unsigned long long)leader->id,
                static_cast<int>(change.type), (unsigned long long)change.node);
          if (change.type == raft::ConfChangeType::kAddLearner) add_node(next_node_id_++, nullptr);
          // A second change at once must be refused while the first is uncommitted: two in
          // flight can form disjoint majorities.
          const raft::Configuration& now = leader->raft->config();
          raft::ConfChange second;
          if (!now.learners.empty() && chance(0.5)) {
            second = {raft::ConfChangeType::kPromoteLearner, pick(now.learners), {}};
          } else if (now.voters.size() > 1) {
            second = {raft::ConfChangeType::kRemoveNode, pick(now.voters), {}};
          }
          if (second.node != 0 && chance(0.5) && leader->raft->propose_conf_change(second).ok()) {
            checker_.on_engine_error("leader accepted a second membership change while one was uncommitted");
          }
          drive(*leader);
        }
      }
      break;
    case 7:
      if (f.has(Fault::kTransfer)) {
        Node* leader = current_leader();
        if (!leader) break;
        const auto& voters = leader->raft->config().voters;
        if (leader->raft->transfer_leadership(pick(voters))) {
          ++stats_.transfers;
          drive(*leader);
        }
      }
      break;
    default:
      break;  // a quiet spell
  }
}

void Simulation::policy_step() {
  Node* leader = current_leader();
  if (!leader) return;
  const NodeId self = leader->id;
  const raft::Configuration& config = leader->raft->config();
  const Index last = leader->raft->log().last_index();
  const auto health = [&](NodeId id) {
    if (id == self) return raft::MemberHealth::kSelf;
    auto it = last_heard_.find({self, id});
    const std::int64_t heard = std::max(it == last_heard_.end() ? std::int64_t{0} : it->second, policy_since_);
    const auto* pr = leader->raft->progress(id);
    return raft::judge_member(now_ - heard, kFailureTimeoutMs, pr != nullptr ? std::optional<Index>(pr->match) : std::nullopt,
                              last);
  };
  const auto match = [&](NodeId id) {
    const auto* pr = leader->raft->progress(id);
    return pr != nullptr ? pr->match : Index{0};
  };
  auto change = raft::next_voter_change(config, static_cast<std::size_t>(options_.voters), health, match);
  // The replacement phase needs a learner in reserve: one joins when there is none.
  if (!change && config.learners.empty()) change = raft::ConfChange{raft::ConfChangeType::kAddLearner, next_node_id_, {}};
  if (!change || !leader->raft->propose_conf_change(*change).ok()) return;
  if (change->type == raft::ConfChangeType::kAddLearner) add_node(next_node_id_++, nullptr);
  ++stats_.conf_changes;
  trace("leader %llu's voter policy: change %d of node %llu", (unsigned long long)self, static_cast<int>(change->type),
        (unsigned long long)change->node);
  drive(*leader);
}

void Simulation::replace_lost_voter() {
  policy_on_ = true;
  policy_since_ = now_;
  schedule(now_ + kPolicyEveryMs, EventKind::kPolicy);
  const auto up_voters = [&](const raft::Configuration& c) {
    std::size_t n = 0;
    for (NodeId v : c.voters) n += nodes_.count(v) && nodes_[v].up ? 1 : 0;
    return n;
  };
  const auto target = static_cast<std::size_t>(options_.voters);
  // A learner to take the lost voter's place, caught up, and the voter set at its target
  // (policy_step adds the learner).
  const bool ready = run_until(now_ + options_.replace_ms, [&] {
    Node* l = current_leader();
    if (!l) return false;
    const raft::Configuration& c = l->raft->config();
    if (c.learners.empty() || c.voters.size() < target || up_voters(c) != c.voters.size()) return false;
    for (NodeId id : c.learners)
      if (nodes_.count(id) && nodes_[id].up && nodes_[id].sm.applied + raft::kCaughtUpLag >= l->raft->log().committed())
        return true;
    return false;
  });
  if (failed_) return;
  if (!ready) {
    checker_.on_liveness_failure("the voter policy did not reach " + std::to_string(target) +
                                 " voters and a caught-up learner within " + std::to_string(options_.replace_ms) +
                                 " ms" + describe_members());
    return;
  }
  Node* leader = current_leader();
  const raft::Configuration before = leader->raft->config();
  // A voter that does not lead, most of the time; the leader itself otherwise.
  std::vector<NodeId> others;
  for (NodeId v : before.voters)
    if (v != leader->id) others.push_back(v);
  const NodeId victim = others.empty() || chance(0.3) ? leader->id : others[random(0, others.size() - 1)];
  crash(nodes_[victim]);  // never restarted: heal() is over
  ++stats_.voters_lost;
  trace("node %llu is lost for good", (unsigned long long)victim);
  const std::size_t wanted = target;  // more voters than the target: the failed one is demoted, none promoted
  const bool replaced = run_until(now_ + options_.replace_ms, [&] {
    Node* l = current_leader();
    if (!l) return false;
    const raft::Configuration& c = l->raft->config();
    return !c.is_voter(victim) && c.voters.size() >= wanted && up_voters(c) == c.voters.size() &&
           l->raft->log().committed() == l->raft->log().last_index();
  });
  if (failed_) return;
  if (!replaced) {
    checker_.on_liveness_failure("node " + std::to_string(victim) + ", a voter lost for good, was not replaced within " +
                                 std::to_string(options_.replace_ms) + " ms" + describe_members());
    return;
  }
  ++stats_.voters_replaced;
  policy_on_ = false;
}

void Simulation::heal() {
  nemesis_on_ = false;
  blocked_.clear();
  drop_rate_ = 0;
  duplicate_rate_ = 0;
  max_delay_ms_ = 3;
  for (auto& [id, n] : nodes_) {
    n.crash_at_next_write = false;
    if (!n.up) {
      start(n);
      drive(n);
    }
  }
  trace("all faults healed");
  check_after_event(nullptr);
}

void Simulation::handle(Event& e) {
  now_ = e.time;
  ++stats_.events;
  auto node_it = nodes_.find(e.node);
  Node* node = node_it == nodes_.end() ? nullptr : &node_it->second;
  switch (e.kind) {
    case EventKind::kTick:
      if (!node || !node->up || node->incarnation != e.incarnation) return;
      node->raft->tick();
      schedule(now_ + kTickMs, EventKind::kTick, node->id);
      break;
    case EventKind::kDeliver:
      if (!node || !node->up || !link_up(e.message.from, e.message.to)) return;
      last_heard_[{e.message.to, e.message.from}] = now_;
      node->raft->step(e.message);
      break;
    case EventKind::kRestart:
      if (!node || node->up || node->incarnation != e.incarnation) return;
      start(*node);
      break;
    case EventKind::kWriteDone: {
      if (!node || !node->up || node->incarnation != e.incarnation || !node->writing) return;
      InFlightWrite w = std::move(*node->writing);
      node->writing.reset();
      complete(*node, w);
      break;
    }
    case EventKind::kClient:
      client_step();
      check_after_event(nullptr);
      return;
    case EventKind::kNemesis:
      nemesis_step();
      check_after_event(nullptr);
      return;
    case EventKind::kPolicy:
      if (!policy_on_) return;
      policy_step();
      schedule(now_ + kPolicyEveryMs, EventKind::kPolicy);
      check_after_event(nullptr);
      return;
  }
  observe(*node);
  drive(*node);
  check_after_event(node);
}

bool Simulation::run_until(std::int64_t end, const std::function<bool()>& done) {
  while (!queue_.empty() && !failed_) {
    if (done && done()) return true;
    if (queue_.front().time > end) break;
    if (stats_.events >= kMaxEvents) {
      checker_.on_liveness_failure("more than " + std::to_string(kMaxEvents) + " events: a message storm");
      failed_ = true;
      break;
    }
    std::pop_heap(queue_.begin(), queue_.end(), EventLater{});
    Event e = std::move(queue_.back());
    queue_.pop_back();
    try {
      handle(e);
    } catch (const std::exception& ex) {
      checker_.on_engine_error(std::string("at ") + std::to_string(now_) + " ms: " + ex.what());
      failed_ = true;
    }
    if (!checker_.ok()) failed_ = true;
  }
  now_ = std::max(now_, end);
  return done && done();
}

SimResult Simulation::run() {
  auto bootstrap = std::make_shared<raft::Snapshot>();
  for (int i = 0; i < options_.voters; ++i) bootstrap->meta.config.voters.push_back(next_node_id_ + i);
  for (int i = 0; i < options_.learners; ++i) bootstrap->meta.config.learners.push_back(next_node_id_ + options_.voters + i);
  std::shared_ptr<const raft::Snapshot> boot = bootstrap;
  for (int i = 0; i < options_.voters + options_.learners; ++i) add_node(next_node_id_++, boot);
  nemesis_gap_ms_ = std::array<std::uint64_t, 3>{150, 400, 1200}[random(0, 2)];
  disk_latency_ms_ = std::array<std::uint64_t, 3>{0, 2, 8}[random(0, 2)];
  aim_at_fresh_leaders_ = std::array<double, 3>{0, 0.25, 0.75}[random(0, 2)];
  min_voters_ = static_cast<std::size_t>(chance(0.3) ? 1 : std::max(1, options_.voters - 1));
  clients_.resize(random(2, 8));
  for (std::size_t i = 0; i < clients_.size(); ++i) clients_[i].id = i + 1;
  const FaultSet& f = options_.faults;
  actions_ = {8};  // a quiet spell
  if (f.has(Fault::kDrop)) actions_.push_back(0);
  if (f.has(Fault::kDuplicate)) actions_.push_back(1);
  if (f.has(Fault::kDelay)) actions_.push_back(2);
  if (f.has(Fault::kPartition)) actions_.insert(actions_.end(), {3, 10});
  if (f.has(Fault::kAsymmetric)) actions_.push_back(4);
  if (f.has(Fault::kCrash)) actions_.insert(actions_.end(), {5, 9});
  // A seed that may shrink to a lone voter changes membership often enough to get there.
  if (f.has(Fault::kMembership)) actions_.insert(actions_.end(), min_voters_ == 1 && options_.voters > 2 ? 4 : 1, 6);
  if (f.has(Fault::kTransfer)) actions_.push_back(7);
  schedule(0, EventKind::kClient);
  if (options_.faults.to_string() != "none") schedule(100, EventKind::kNemesis);

  run_until(options_.chaos_ms, nullptr);
  if (!failed_) {
    heal();
    // Liveness: with the faults gone, a leader appears and a new proposal commits.
    std::int64_t healed_at = now_;
    bool live = run_until(healed_at + options_.liveness_ms, [&] { return last_ack_sent_at_ >= healed_at; });
    if (!failed_ && !live) {
      checker_.on_liveness_failure("no request sent after healing was acknowledged within " +
                                   std::to_string(options_.liveness_ms) + " ms");
    }
  }
  if (!failed_ && checker_.ok()) {
    clients_on_ = false;
    auto converged = [&] {
      Node* leader = current_leader();
      if (!leader || leader->raft->log().committed() != leader->raft->log().last_index()) return false;
      for (NodeId id : members()) {
        auto it = nodes_.find(id);
        if (it == nodes_.end() || !it->second.up || it->second.sm.applied != leader->raft->log().committed()) return false;
      }
      return true;
    };
    if (!run_until(now_ + options_.converge_ms, converged)) {
      checker_.on_liveness_failure("members did not all apply the leader's log within " +
                                   std::to_string(options_.converge_ms) + " ms after healing" + describe_members());
    } else {
      std::map<NodeId, std::vector<ClientOp>> executed;
      for (NodeId id : members()) executed[id] = nodes_[id].sm.executed;
      checker_.check_final(executed);
    }
  }
  // Fewer than three voters cannot lose one and keep a majority: nothing to regain.
  if (!failed_ && checker_.ok() && options_.replace_voter && options_.voters >= 3) replace_lost_voter();
  for (auto& [id, n] : nodes_) stats_.executed = std::max<std::uint64_t>(stats_.executed, n.sm.executed.size());
  stats_.virtual_ms = now_;
  return SimResult{checker_.violations(), stats_, checker_.counts()};
}

}  // namespace

SimStats& SimStats::operator+=(const SimStats& o) {
  events += o.events;
  messages += o.messages;
  requests += o.requests;
  proposals += o.proposals;
  retries += o.retries;
  acknowledged += o.acknowledged;
  executed += o.executed;
  duplicates += o.duplicates;
  reads += o.reads;
  elections += o.elections;
  crashes += o.crashes;
  aimed_crashes += o.aimed_crashes;
  partitions += o.partitions;
  conf_changes += o.conf_changes;
  voters_lost += o.voters_lost;
  voters_replaced += o.voters_replaced;
  transfers += o.transfers;
  snapshots_installed += o.snapshots_installed;
  compactions += o.compactions;
  virtual_ms += o.virtual_ms;
  return *this;
}

SimResult run_simulation(const SimOptions& options) {
  Simulation sim(options);
  return sim.run();
}

std::string replay_command(const SimOptions& o) {
  std::string cmd = "raftfl-sim --seeds 1 --first " + std::to_string(o.seed) + " --nodes " + std::to_string(o.voters);
  if (o.learners > 0) cmd += " --learners " + std::to_string(o.learners);
  cmd += " --faults " + o.faults.to_string();
  if (o.chaos_ms != SimOptions{}.chaos_ms) cmd += " --chaos-ms " + std::to_string(o.chaos_ms);
  return cmd;
}

}  // namespace raftfl::sim
