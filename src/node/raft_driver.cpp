#include "raftfl/node/raft_driver.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <capnp/message.h>

#include <algorithm>
#include <optional>

#include "raftfl/common/failure.hpp"
#include "raftfl/common/log.hpp"
#include "raftfl/net/run_elsewhere.hpp"
#include "raftfl/node/member_context.hpp"
#include "raftfl/raft/little_endian.hpp"
#include "raftfl/wire/control_codec.hpp"
#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::node {
namespace {

constexpr auto kAwait = asio::experimental::as_tuple(asio::use_awaitable);
using Clock = std::chrono::steady_clock;

// A first segment that holds the whole message except the payloads referenced in place
// (wire::RaftMessageBuilder), so that the rest is one segment and one gather-write entry.
std::size_t first_segment_words(const raft::Message& m) {
  const auto copied = [](const raft::Payload& p) {
    return p.size() < wire::RaftMessageBuilder::kReferenceBytes ? p.size() + sizeof(capnp::word) : 0;
  };
  std::size_t bytes = 512 + m.entries.size() * 64 + copied(m.context);
  for (const auto& e : m.entries) bytes += copied(e.data);
  return bytes / sizeof(capnp::word) + 1;
}

SnapshotSenderOptions snapshot_sender_options(const NodeConfig& config) {
  SnapshotSenderOptions o;
  o.chunk_bytes = config.snapshot_chunk_bytes;
  o.bytes_per_second = config.snapshot_bytes_per_second;
  // A receiver that went quiet is asked again after a few election timeouts: long enough
  // not to ask a busy one, short enough that a restarted one resumes within seconds.
  o.ask_after = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(1000), 3 * config.election_timeout_max);
  return o;
}

}  // namespace

struct RaftDriver::Pending {
  Pending(asio::io_context& io, raft::Index i, raft::Term t) : index(i), term(t), timer(io) {
    timer.expires_at(Clock::time_point::max());
  }
  void finish(ProposeOutcome o) {
    outcome = std::move(o);
    timer.cancel();
  }
  raft::Index index;
  raft::Term term;
  asio::steady_timer timer;
  ProposeOutcome outcome;
};

struct RaftDriver::PendingRead {
  explicit PendingRead(asio::io_context& io) : timer(io) {}
  void finish(ReadOutcome o) {
    outcome = std::move(o);
    done = true;
    timer.cancel();
  }
  asio::steady_timer timer;
  std::optional<raft::Index> index;  // known once the leader answered
  ReadOutcome outcome;
  bool done = false;
};

RaftDriver::RaftDriver(asio::io_context& io, NodeConfig config, std::unique_ptr<storage::Storage> storage,
                       std::unique_ptr<net::Transport> transport, ReplicatedState& state, MessageRouter& router,
                       EmptyStart empty_start)
    : io_(io),
      config_(std::move(config)),
      storage_(std::move(storage)),
      transport_(std::move(transport)),
      state_(state),
      router_(router),
      snapshot_sender_(snapshot_sender_options(config_),
                       [this](raft::NodeId to, raft::Term term, const wire::SnapshotChunk& chunk) {
                         return send_snapshot_chunk(to, term, chunk);
                       }),
      snapshot_receiver_(config_.storage == StorageKind::kDisk ? config_.data_dir : std::filesystem::path()),
      tick_timer_(io),
      ready_wake_(io),
      stopped_wake_(io) {
  if (config_.storage == StorageKind::kDisk) {
    net::ReactorOptions ro;
    ro.name = "storage";
    storage_reactor_ = std::make_unique<net::Reactor>(ro);
    storage_reactor_->start();
  }
  auto persisted = storage_->load();
  if (!persisted.snapshot && empty_start == EmptyStart::kBootstrap) {
    // A brand-new node of a brand-new cluster: every configured node is a voter.
    auto boot = std::make_shared<raft::Snapshot>();
    boot->meta.config.voters.push_back(config_.id);
    for (const auto& p : config_.peers) boot->meta.config.voters.push_back(p.id);
    std::sort(boot->meta.config.voters.begin(), boot->meta.config.voters.end());
    // Where the members are, for nodes that join later and learn it from the snapshot.
    // Raft endpoints only, as every member's file gives them, so that all nodes start from
    // the same contexts; a leader records its admin endpoint itself (MembershipManager).
    boot->meta.config.contexts[config_.id] = encode_member_context({config_.listen, {}});
    for (const auto& p : config_.peers) boot->meta.config.contexts[p.id] = encode_member_context({p.address, {}});
    storage_->save(boot, {}, nullptr);
    persisted = storage_->load();
  }
  if (persisted.snapshot && !persisted.snapshot->data.empty())
    state_.restore(persisted.snapshot->meta.index, persisted.snapshot->data.view());
  last_snapshot_index_ = persisted.snapshot ? persisted.snapshot->meta.index : 0;
  latest_hard_state_ = synced_hard_state_ = persisted.hard_state;
  raft_ = std::make_unique<raft::Raft>(config_.raft_options(), std::move(persisted));
  router_.route(wire::EnvelopeBody::kRaft,
                [this](net::NodeId from, capnp::MessageReader& reader) { step(from, reader); });
  router_.route(wire::EnvelopeBody::kSnapshotChunk,
                [this](net::NodeId from, capnp::MessageReader& reader) { on_snapshot_chunk(from, reader); });
  ready_wake_.expires_at(Clock::time_point::max());
  stopped_wake_.expires_at(Clock::time_point::max());
}

RaftDriver::~RaftDriver() {
  if (transport_) transport_->stop();
  if (storage_reactor_) {
    storage_reactor_->stop();
    storage_reactor_->join();
  }
}

void RaftDriver::start() {
  transport_->start([this](net::NodeId from, capnp::MessageReader& reader) {
    if (!stopping_) router_.receive(from, reader);
  });
  asio::co_spawn(io_, tick_loop(), [](std::exception_ptr error) {
    // A broken invariant met on a tick: without this the ticks would just stop.
    if (error) common::exit_on_failure("node", "fatal", error);
  });
  asio::co_spawn(io_, ready_loop(), [this](std::exception_ptr error) {
    ready_loop_done_ = true;
    stopped_wake_.cancel();
    // A failed write or a broken invariant: continuing could acknowledge what is not
    // durable. The supervisor (systemd, the benchmark) sees the exit.
    if (error) common::exit_on_failure("node", "fatal", error);
  });
}

void RaftDriver::step(net::NodeId from, capnp::MessageReader& reader) {
  // The router checked the envelope's addressing.
  raft::Message m = wire::decode_raft_message(reader, nullptr);
  last_heard_[from] = Clock::now();
  step(m);
}

void RaftDriver::step(const raft::Message& m) {
  raft_->step(m);
  if (raft_->dropped_messages() != drops_seen_) log_drop(m.from);
  notify();
}

bool RaftDriver::send_snapshot_chunk(raft::NodeId to, raft::Term term, const wire::SnapshotChunk& chunk) {
  auto builder = std::make_unique<capnp::MallocMessageBuilder>(
      static_cast<unsigned>((chunk.data.size() + 4096) / sizeof(capnp::word)));
  wire::encode_snapshot_chunk(chunk, {config_.cluster_id, config_.id, to, term}, *builder);
  return !stopping_ && transport_->send(to, std::move(builder));
}

void RaftDriver::on_snapshot_chunk(net::NodeId from, capnp::MessageReader& reader) {
  wire::EnvelopeHeader header;
  const auto chunk = wire::decode_snapshot_chunk(reader, &header);
  const auto now = Clock::now();
  last_heard_[from] = now;
  if (chunk.ack) {
    if (snapshot_sender_.on_ack(from, chunk, now))
      log::line(log::Level::kInfo, "node",
                "snapshot at index " + std::to_string(chunk.meta.index) + " (" + std::to_string(chunk.total_bytes) +
                    " bytes) streamed to node " + std::to_string(from));
    return;
  }
  // A deposed leader still streaming: its snapshot may be one the new leader's log
  // already went past, and its pieces would replace the new leader's in the file.
  if (header.term < raft_->term()) return;
  const auto outcome = snapshot_receiver_.receive(chunk);
  if (outcome.resumed)
    log::line(log::Level::kInfo, "node",
              "resuming the snapshot at index " + std::to_string(chunk.meta.index) + " from node " +
                  std::to_string(from) + " at byte " + std::to_string(outcome.held) + " of " +
                  std::to_string(chunk.total_bytes));
  send_snapshot_chunk(from, raft_->term(), snapshot_acknowledgement(chunk, outcome.held));
  if (!outcome.snapshot) return;
  raft::Message m;
  m.type = raft::MessageType::kSnapshot;
  m.from = from;
  m.to = config_.id;
  m.term = header.term;
  m.snapshot = outcome.snapshot;
  step(m);
}

void RaftDriver::log_drop(net::NodeId from) {
  // At most one line a second: a peer that sends nonsense must not flood the log.
  const auto now = Clock::now();
  if (drops_seen_ != 0 && now - last_drop_logged_ < std::chrono::seconds(1)) return;
  const auto dropped = raft_->dropped_messages() - drops_seen_;
  drops_seen_ = raft_->dropped_messages();
  last_drop_logged_ = now;
  log::line(log::Level::kWarn, "node",
            "dropped " + std::to_string(dropped) + " impossible Raft message" + (dropped == 1 ? "" : "s") +
                ", the last from node " + std::to_string(from) + ": " + raft_->last_drop_reason());
}

asio::awaitable<void> RaftDriver::tick_loop() {
  auto next = Clock::now();
  while (!stopping_) {
    next += config_.tick;
    tick_timer_.expires_at(next);
    co_await tick_timer_.async_wait(kAwait);
    if (stopping_) break;
    raft_->tick();
    if (is_leader()) {
      for (auto peer : snapshot_sender_.tick(Clock::now())) raft_->report_snapshot(peer, false);
    } else {
      snapshot_sender_.stop_all();
    }
    notify();
  }
}

void RaftDriver::send_all(std::vector<raft::Message>& messages) {
  for (auto& m : messages) {
    if (m.type == raft::MessageType::kSnapshot) {
      snapshot_sender_.start(m.to, m.term, m.snapshot, Clock::now());
      continue;
    }
    auto builder = std::make_unique<wire::RaftMessageBuilder>(static_cast<unsigned>(first_segment_words(m)));
    wire::encode_raft_message(m, config_.cluster_id, *builder);
    // A refused send is a lost message, which Raft tolerates.
    transport_->send(m.to, std::move(builder));
  }
}

asio::awaitable<void> RaftDriver::on_storage(std::function<void()> work) {
  if (!storage_reactor_) {
    work();
    co_return;
  }
  // Named, not temporaries in the co_await: GCC 12 mishandles temporaries there.
  auto to_storage = [this](auto task) { asio::post(storage_reactor_->context(), std::move(task)); };
  asio::any_io_executor home = io_.get_executor();
  co_await net::run_elsewhere(to_storage, home, work);
}

asio::awaitable<void> RaftDriver::ready_loop() {
  for (;;) {
    if (!raft_->has_ready()) {
      if (stopping_) co_return;
      co_await ready_wake_.async_wait(kAwait);
      ready_wake_.expires_at(Clock::time_point::max());
      continue;
    }
    raft::Ready rd = raft_->ready();
    // Before anything is sent: a member just added is reached in this very Ready.
    sync_peers();
    if (rd.soft_state) {
      const bool leader = rd.soft_state->role == raft::Role::kLeader;
      if (!leader && !pending_.empty()) fail_pending("leadership lost; the entry may still commit");
      if (leader != was_leader_) {
        was_leader_ = leader;
        log::line(log::Level::kInfo, "node",
                  "node " + std::to_string(config_.id) + (leader ? " is the leader" : " is no longer the leader") +
                      " (term " + std::to_string(raft_->term()) + ")");
        if (leadership_callback_) leadership_callback_(leader);
      }
    }
    send_all(rd.messages);
    if (rd.hard_state) latest_hard_state_ = *rd.hard_state;
    // The commit index is volatile state (Figure 2): a node that forgets part of it
    // relearns it from the leader. So a Ready whose only change is the commit index takes
    // no durability barrier; the new commit index rides along with the next one (as
    // etcd's MustSync). Entries, a snapshot, a new term or a new vote always take one.
    const bool term_or_vote_changed = latest_hard_state_.term != synced_hard_state_.term ||
                                      latest_hard_state_.vote != synced_hard_state_.vote;
    if (rd.snapshot || !rd.entries.empty() || term_or_vote_changed) {
      const bool write_hard_state = !(latest_hard_state_ == synced_hard_state_);
      co_await on_storage([&] {
        storage_->save(rd.snapshot, rd.entries, write_hard_state ? &latest_hard_state_ : nullptr);
      });
      synced_hard_state_ = latest_hard_state_;
      ++persists_;
      persisted_entries_ += rd.entries.size();
    }
    send_all(rd.messages_after_persist);
    if (rd.snapshot) {
      state_.restore(rd.snapshot->meta.index, rd.snapshot->data.view());
      last_snapshot_index_ = rd.snapshot->meta.index;
      while (!pending_.empty() && pending_.front()->index <= rd.snapshot->meta.index) {
        pending_.front()->finish({false, pending_.front()->index, "overtaken by a snapshot; outcome unknown"});
        pending_.pop_front();
      }
    }
    for (const auto& e : rd.committed_entries) apply(e);
    answer_reads(rd.read_states);  // also releases reads that waited for these entries
    raft_->advance(rd);
    co_await maybe_snapshot();
  }
}

void RaftDriver::apply(const raft::Entry& e) {
  state_.apply(e);
  while (!pending_.empty() && pending_.front()->index <= e.index) {
    auto& p = *pending_.front();
    if (p.index == e.index && p.term == e.term)
      p.finish({true, e.index, "", config_.id});
    else
      p.finish({false, p.index, "overwritten by a later leader", raft_->leader()});
    pending_.pop_front();
  }
}

void RaftDriver::answer_reads(std::vector<raft::ReadState>& states) {
  for (const auto& rs : states) {
    if (rs.context.size() != sizeof(std::uint64_t)) continue;
    const auto it = reads_.find(raft::get_le<std::uint64_t>(rs.context.view().data()));
    if (it != reads_.end()) it->second->index = rs.index;  // a late answer to a read given up finds nothing
  }
  release_applied_reads();
}

void RaftDriver::release_applied_reads() {
  for (auto it = reads_.begin(); it != reads_.end();) {
    auto& read = *it->second;
    if (read.index && *read.index <= state_.applied()) {
      read.finish({true, *read.index, "", raft_->leader()});
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
}

void RaftDriver::fail_pending(const std::string& why) {
  for (auto& p : pending_) p->finish({false, p->index, why, raft_->leader()});
  pending_.clear();
}

asio::awaitable<void> RaftDriver::maybe_snapshot() {
  if (config_.snapshot_every == 0 || state_.applied() < last_snapshot_index_ + config_.snapshot_every) co_return;
  if (!raft_->compact(state_.applied(), raft::Payload(state_.snapshot()))) co_return;
  last_snapshot_index_ = state_.applied();
  auto snap = raft_->snapshot();
  co_await on_storage([&] { storage_->compact(snap); });
}

void RaftDriver::sync_peers() {
  const raft::Configuration& members = raft_->config();
  if (peers_synced_ && members == synced_members_) return;
  peers_synced_ = true;
  synced_members_ = members;
  std::vector<net::PeerEndpoint> peers;
  // The operator's configuration first: a member's own context names the address it
  // listens on, which may be a wildcard that only its configured peers know better.
  const auto add = [&](raft::NodeId id) {
    if (id == config_.id) return;
    for (const auto& p : config_.peers) {
      if (p.id == id) {
        peers.push_back({id, p.address.host, p.address.port});
        return;
      }
    }
    if (auto it = members.contexts.find(id); it != members.contexts.end()) {
      if (const auto endpoints = decode_member_context(it->second)) {
        peers.push_back({id, endpoints->raft.host, endpoints->raft.port});
        return;
      }
    }
    log::line(log::Level::kWarn, "node", "member " + std::to_string(id) + " has no known endpoint: unreachable");
  };
  for (raft::NodeId id : members.voters) add(id);
  for (raft::NodeId id : members.learners) add(id);
  if (!members.contains(config_.id)) {
    // A node that joined and has not yet applied its own addition: its configuration is
    // older than every member that knows it, so the members it was told about when it
    // joined are peers too. Refusing them, it refused a new leader elected before it had
    // caught up, and waited for a snapshot that leader could not send.
    for (const auto& p : config_.peers)
      if (!members.contains(p.id)) add(p.id);
  }
  transport_->set_peers(peers);
}

asio::awaitable<ProposeOutcome> RaftDriver::await_applied(raft::ProposeResult r) {
  if (!r.ok()) co_return ProposeOutcome{false, 0, raft::to_string(r.error), raft_->leader()};
  auto p = std::make_shared<Pending>(io_, r.index, r.term);
  pending_.push_back(p);
  notify();
  co_await p->timer.async_wait(kAwait);
  co_return p->outcome;
}

asio::awaitable<ProposeOutcome> RaftDriver::propose_conf_change(raft::ConfChange change) {
  if (stopping_) co_return ProposeOutcome{false, 0, "node is stopping", raft::kNoNode};
  const auto r = raft_->propose_conf_change(change);
  co_return co_await await_applied(r);
}

asio::awaitable<ProposeOutcome> RaftDriver::propose(std::string payload) {
  if (stopping_) co_return ProposeOutcome{false, 0, "node is stopping", raft::kNoNode};
  const auto& log = raft_->log();
  if (log.last_index() - log.snapshot_index() >= config_.max_log_entries)
    co_return ProposeOutcome{false, 0, "busy: the in-memory log holds max_log_entries", raft_->leader()};
  const auto r = raft_->propose(raft::Payload(std::move(payload)));
  co_return co_await await_applied(r);
}

asio::awaitable<ReadOutcome> RaftDriver::read_barrier(std::chrono::milliseconds timeout) {
  if (stopping_) co_return ReadOutcome{false, 0, "node is stopping", raft::kNoNode};
  const std::uint64_t id = ++next_read_id_;
  std::string context;
  raft::put_le<std::uint64_t>(context, id);
  if (!raft_->read_index(raft::Payload(std::move(context))))
    co_return ReadOutcome{false, 0, "no leader known", raft::kNoNode};
  auto read = std::make_shared<PendingRead>(io_);
  reads_.emplace(id, read);
  read->timer.expires_after(timeout);
  notify();
  co_await read->timer.async_wait(kAwait);
  if (!read->done) {
    reads_.erase(id);
    co_return ReadOutcome{false, 0, "read not confirmed in time (leadership changing?)", raft_->leader()};
  }
  co_return read->outcome;
}

asio::awaitable<ProposeOutcome> RaftDriver::propose_control(const control::Command& command) {
  co_return co_await propose(wire::encode_control_command(command));
}

asio::awaitable<void> RaftDriver::stop() {
  if (!stopping_) {
    stopping_ = true;
    tick_timer_.cancel();
    fail_pending("node is stopping");
    for (auto& [id, read] : reads_) read->finish({false, 0, "node is stopping", raft::kNoNode});
    reads_.clear();
    notify();
  }
  // The Ready loop finishes the write it has in flight and returns.
  while (!ready_loop_done_) {
    co_await stopped_wake_.async_wait(kAwait);
    stopped_wake_.expires_at(Clock::time_point::max());
  }
  transport_->stop();
  if (!(latest_hard_state_ == synced_hard_state_)) {
    // A clean stop leaves the latest commit index on disk too.
    co_await on_storage([&] { storage_->save(nullptr, {}, &latest_hard_state_); });
    synced_hard_state_ = latest_hard_state_;
  }
}

}  // namespace raftfl::node
