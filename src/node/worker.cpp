#include "worker.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <exception>
#include <optional>
#include <set>

#include "raftfl/common/failure.hpp"
#include "raftfl/common/log.hpp"
#include "raftfl/net/run_elsewhere.hpp"
#include "raftfl/train/partition.hpp"
#include "raftfl/wire/gossip_codec.hpp"
#include "checkpoint.hpp"

namespace raftfl::node {
namespace {

constexpr auto kAwait = asio::experimental::as_tuple(asio::use_awaitable);
using Clock = std::chrono::steady_clock;

std::uint64_t micros_since(Clock::time_point t) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
}

gossip::Sparsifier sparsifier_of(SparsifierKind kind) {
  switch (kind) {
    case SparsifierKind::kRandomK: return gossip::Sparsifier::kRandomK;
    case SparsifierKind::kTopK: return gossip::Sparsifier::kTopK;
    case SparsifierKind::kDense: break;
  }
  return gossip::Sparsifier::kDense;
}

gossip::ExchangeSpec spec_of(const GossipConfig& g) {
  gossip::ExchangeSpec spec;
  spec.sparsifier = sparsifier_of(g.sparsifier);
  spec.density = g.density;
  spec.encoding = g.encoding == EncodingKind::kBf16 ? gossip::Encoding::kBf16 : gossip::Encoding::kFp32;
  return spec;
}

train::ModelKind model_kind(ModelKind kind) {
  return kind == ModelKind::kMlp ? train::ModelKind::kMlp : train::ModelKind::kCnn;
}

train::ImageSet first_images(train::ImageSet set, std::size_t count) {
  if (count == 0 || count >= set.count) return set;
  set.count = count;
  set.pixels.resize(count * set.rows * set.cols);
  set.labels.resize(count);
  return set;
}

// The supervisor's restarts of a failed round loop: the first pause, its ceiling, and how
// many failures within the window stop the process.
constexpr std::chrono::milliseconds kFirstBackoff{500};
constexpr std::chrono::milliseconds kMaxBackoff{8000};
constexpr std::size_t kMaxFailures = 5;
constexpr std::chrono::minutes kFailureWindow{5};

// How often a worker that is not yet one of the control state's workers asks again.
constexpr auto kAdmissionRetry = std::chrono::seconds(1);

// Chunks of the model so that a transfer spans several frames: the receiver times the
// span between the first and the last, which measures the link rather than the peer's
// training time.
constexpr std::size_t kMinChunksForTiming = 4;

// How far ahead of our round a peer's model is kept (a faster peer is at most a round or
// two ahead: it waits for us at each exchange).
constexpr std::uint64_t kInboxRoundsAhead = 8;

// A connection down this long means the peer is gone for this round; shorter outages are
// reconnects.
constexpr auto kUnreachableAfter = std::chrono::milliseconds(300);
constexpr auto kReachabilityPoll = std::chrono::milliseconds(100);

// Before its first round a worker waits for its node to catch up with the control log:
// applied == committed with a leader known for kCatchUpSettle (a few heartbeats: the
// leader's first heartbeat after a restart only tells what this node already holds), at
// most kCatchUpLimit.
constexpr auto kCatchUpSettle = std::chrono::milliseconds(300);
constexpr auto kCatchUpLimit = std::chrono::seconds(10);
constexpr auto kCatchUpPoll = std::chrono::milliseconds(25);

}  // namespace

Worker::Worker(asio::io_context& io, RaftDriver& node, const NodeConfig& config)
    : io_(io),
      node_(node),
      config_(config),
      spec_(spec_of(config.gossip)),
      train_set_(first_images(train::load_fashion_mnist(config.training.dataset_dir, train::Split::kTrain),
                              config.training.train_subset)),
      test_set_(train::load_fashion_mnist(config.training.dataset_dir, train::Split::kTest)),
      model_(model_kind(config.training.model), config.training.model_seed),
      exchanger_(spec_, model_.parameter_count()),
      consensus_exchanger_({gossip::Sparsifier::kDense, 1.0, spec_.encoding}, model_.parameter_count()),
      wake_(io) {
  const auto& t = config_.training;
  // Cut now for the count this file implies, so that an impossible partition is a
  // configuration error at start; cut again if the control log says otherwise.
  partition(config_.shard_count());
  train::set_threads(t.threads);
  pool_ = std::make_unique<train::TrainingPool>(1, "train");
  wake_.expires_at(Clock::time_point::max());
  if (checkpoints()) resume_after_ = load_checkpoint();
  status_.rounds_done = resume_after_;
}

Worker::~Worker() { pool_.reset(); }

namespace {

std::filesystem::path checkpoint_path(const NodeConfig& c) { return c.data_dir / "model.ckpt"; }

}  // namespace

void Worker::save_checkpoint(std::uint64_t round) const {
  write_checkpoint(checkpoint_path(config_), round, model_.parameters());
}

std::uint64_t Worker::load_checkpoint() {
  std::optional<std::uint64_t> round;
  try {
    round = read_checkpoint(checkpoint_path(config_), model_.parameters());
  } catch (const CheckpointError& e) {
    log::line(log::Level::kWarn, "worker", std::string(e.what()) + "; starting afresh");
    return 0;
  }
  if (!round) return 0;
  log::line(log::Level::kInfo, "worker", "resumed from the checkpoint of round " + std::to_string(*round));
  return *round;
}

void Worker::partition(std::uint32_t shard_count) {
  const auto& t = config_.training;
  partitions_ = t.partition == PartitionKind::kIid
                    ? train::partition_iid(train_set_.count, shard_count, t.partition_seed)
                    : train::partition_dirichlet(train_set_.labels, shard_count, t.dirichlet_alpha, t.partition_seed,
                                                 t.min_samples_per_node);
}

bool Worker::refresh_shards() {
  const auto& control = node_.state().control();
  const auto* self = control.member(config_.id);
  if (self == nullptr || self->shards.empty()) return false;
  if (self->shards == held_shards_) return true;
  if (control.data().shard_count != partitions_.size()) partition(control.data().shard_count);
  shard_.clear();
  std::string names;
  for (const auto s : self->shards) {
    shard_.insert(shard_.end(), partitions_[s].begin(), partitions_[s].end());
    names += (names.empty() ? "" : ",") + std::to_string(s);
  }
  std::sort(shard_.begin(), shard_.end());
  held_shards_ = self->shards;
  status_.train_samples = shard_.size();
  status_.shards = held_shards_;
  log::line(log::Level::kInfo, "worker",
            "training on shard" + std::string(held_shards_.size() > 1 ? "s " : " ") + names + " of " +
                std::to_string(partitions_.size()) + " (" + std::to_string(shard_.size()) + " samples)");
  return true;
}

void Worker::start() {
  asio::co_spawn(io_, supervise(), [this](std::exception_ptr error) {
    if (!error) return;
    status_.failed = true;
    common::log_failure("worker", "stopped", error);
  });
}

asio::awaitable<void> Worker::supervise() {
  // A failed round loop (a checkpoint that cannot be written, a refused model that threw
  // past its handler) is started again after a pause that doubles each time; it rejoins
  // at the cluster's round and takes a peer's model, so a half-done round leaves nothing
  // behind. Failing again and again is no passing trouble: the process then exits 1 for
  // its supervisor (systemd) to restart it from its durable state.
  auto backoff = kFirstBackoff;
  std::deque<Clock::time_point> failures;
  for (;;) {
    std::exception_ptr error;
    try {
      co_await run();
    } catch (...) {
      error = std::current_exception();
    }
    if (!error || stopping_) co_return;
    const auto now = Clock::now();
    failures.push_back(now);
    while (now - failures.front() > kFailureWindow) failures.pop_front();
    ++status_.restarts;
    status_.last_failure = common::describe(error);
    if (failures.size() >= kMaxFailures) {
      status_.failed = true;
      common::exit_on_failure("worker",
                              "failed " + std::to_string(failures.size()) + " times within " +
                                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kFailureWindow).count()) +
                                  " s; stopping the node",
                              error);
    }
    log::line(log::Level::kWarn, "worker",
              "failed: " + status_.last_failure + "; restarting in " + std::to_string(backoff.count()) + " ms (failure " +
                  std::to_string(failures.size()) + " of " + std::to_string(kMaxFailures) + " allowed)");
    wake_.expires_after(backoff);
    co_await wake_.async_wait(kAwait);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

void Worker::stop() {
  stopping_ = true;
  wake();
}

void Worker::control_applied() { wake(); }

template <typename Job>
asio::awaitable<std::invoke_result_t<Job&>> Worker::on_pool(Job job) {
  // Named, not temporaries in the co_await: GCC 12 mishandles temporaries there.
  auto to_pool = [this](std::function<void()> task) { pool_->submit(std::move(task)); };
  asio::any_io_executor home = io_.get_executor();
  co_return co_await net::run_elsewhere(to_pool, home, job);
}

void Worker::receive_chunk(net::NodeId from, capnp::MessageReader& reader) {
  auto chunk = wire::decode_gossip_chunk(reader);
  const auto round = chunk.header.round;
  // Bounded: a chunk for a round long past, or implausibly far ahead, is dropped.
  if (round < current_round_ || round > current_round_ + kInboxRoundsAhead) return;
  auto& inbox = inbox_[{round, from}];
  if (inbox.failed) return;
  const auto now = Clock::now();
  if (inbox.chunks == 0) inbox.first_chunk = now;
  inbox.last_chunk = now;
  ++inbox.chunks;
  try {
    inbox.model.add(chunk.header, chunk.values, chunk.indices, round, expected_spec(round, chunk.header),
                    model_.parameter_count());
  } catch (const gossip::ExchangeError& e) {
    inbox.failed = true;
    ++status_.exchange_errors;
    log::line(log::Level::kWarn, "worker", "model from node " + std::to_string(from) + " refused: " + e.what());
  }
  if (round == current_round_) wake();
}

const gossip::ExchangeSpec& Worker::expected_spec(control::Round round, const gossip::ChunkHeader& header) const {
  if (consensus_round(round)) return consensus_exchanger_.spec();
  // A fresh worker takes the whole model. The round's plan may not be applied here yet
  // when the first chunk comes: a dense chunk is then taken as one, and take_model checks
  // the size of what arrived.
  const auto* topology = node_.state().control().topology(round);
  const bool taking = topology != nullptr ? topology->is_fresh(config_.id)
                                          : header.sparsifier == gossip::Sparsifier::kDense;
  return taking ? consensus_exchanger_.spec() : spec_;
}

asio::awaitable<const control::Topology*> Worker::wait_topology(control::Round& round) {
  for (;;) {
    if (stopping_) co_return nullptr;
    const auto& control = node_.state().control();
    if (const auto* topology = control.topology(round)) co_return topology;
    // Far behind the others (restarted, or stalled): join where they are instead of
    // replaying rounds whose peers have moved on.
    const auto ahead = config_.coordinator.rounds_ahead + 4;
    if (control.last_round() > round + ahead) {
      const auto next = control.last_round() - config_.coordinator.rounds_ahead;
      log::line(log::Level::kWarn, "worker",
                "behind: skipping from round " + std::to_string(round) + " to " + std::to_string(next));
      round = next;
      continue;
    }
    wake_.expires_at(Clock::time_point::max());
    co_await wake_.async_wait(kAwait);
  }
}

void Worker::send_report(const gossip::RoundReport& report) {
  recent_reports_.push_back({report, raft::kNoNode});
  while (recent_reports_.size() > kReportsResent) recent_reports_.pop_front();
  flush_reports();
}

void Worker::flush_reports() {
  // A report sent to a leader that then lost its place may never have reached the new
  // coordinator: every recent report goes once to each leader (it counts each once).
  const auto leader = node_.leader();
  if (leader == raft::kNoNode) return;
  for (auto& [report, sent_to] : recent_reports_) {
    if (sent_to == leader) continue;
    // A joining announcement is not resent: to a new coordinator it would say once more
    // that this worker's model is stale.
    if (report.joining && sent_to != raft::kNoNode) continue;
    if (deliver_report(report, leader)) sent_to = leader;
  }
}

bool Worker::deliver_report(const gossip::RoundReport& report, raft::NodeId leader) {
  if (leader == raft::kNoNode) return false;
  if (leader != config_.id)
    return node_.send_message(leader, wire::encode_round_report(config_.cluster_id, config_.id, leader, report));
  if (local_report_) local_report_(report);
  return true;
}

asio::awaitable<bool> Worker::await_admission() {
  // Shards come from the control log: a node that joined the cluster asks the coordinator
  // to make it a worker, and asks again until it is one (a leader change loses the ask).
  auto next_ask = Clock::now();
  auto next_note = Clock::now() + std::chrono::seconds(5);
  while (!stopping_) {
    if (refresh_shards()) co_return true;
    const auto now = Clock::now();
    if (now >= next_ask) {
      gossip::RoundReport ask;
      ask.joining = true;
      deliver_report(ask, node_.leader());
      next_ask = now + kAdmissionRetry;
    }
    if (now >= next_note) {
      log::line(log::Level::kInfo, "worker", "waiting to be given a data shard by the coordinator");
      next_note = now + std::chrono::seconds(5);
    }
    wake_.expires_after(std::chrono::milliseconds(100));
    co_await wake_.async_wait(kAwait);
  }
  co_return false;
}

asio::awaitable<void> Worker::catch_up() {
  // A worker that comes back (a restart, a long stall) must not replay rounds the others
  // have left: its peers there are gone and every exchange would time out. The control
  // log says where the cluster is, once this node has caught up with it: a leader is
  // known and everything known committed is applied, for a few heartbeats in a row.
  const auto deadline = Clock::now() + kCatchUpLimit;
  auto settled_since = Clock::now();
  while (!stopping_ && Clock::now() < deadline) {
    if (node_.leader() == raft::kNoNode || node_.applied() < node_.committed()) settled_since = Clock::now();
    else if (Clock::now() - settled_since >= kCatchUpSettle) break;
    wake_.expires_after(kCatchUpPoll);
    co_await wake_.async_wait(kAwait);
  }
}

asio::awaitable<control::Round> Worker::first_round() {
  control::Round round = resume_after_ + 1;
  // The coordinator plans rounds_ahead rounds past the furthest one reported done, so the
  // cluster works on about last_round - rounds_ahead + 1.
  const auto planned = node_.state().control().last_round();
  const auto ahead = config_.coordinator.rounds_ahead;
  if (planned > ahead && planned - ahead + 1 > round) {
    log::line(log::Level::kInfo, "worker",
              "joining the cluster at round " + std::to_string(planned - ahead + 1) + " (checkpoint of round " +
                  std::to_string(resume_after_) + ")");
    round = planned - ahead + 1;
  }
  co_return round;
}

void Worker::announce_joining(control::Round round) {
  gossip::RoundReport joining;
  joining.round = round - 1;
  joining.joining = true;
  joining.train_samples = shard_.size();
  send_report(joining);  // lost with a leader change: then its first round's report does the same
}

asio::awaitable<void> Worker::run() {
  const auto& t = config_.training;
  co_await catch_up();
  if (!co_await await_admission()) co_return;
  control::Round round = co_await first_round();
  status_.started_round = round;
  announce_joining(round);
  while (!stopping_ && round <= t.rounds) {
    const control::Topology* topology = co_await wait_topology(round);
    if (topology == nullptr || round > t.rounds) break;
    current_round_ = round;
    status_.round = round;
    for (auto it = inbox_.begin(); it != inbox_.end() && it->first.first < round;) it = inbox_.erase(it);
    refresh_shards();
    flush_reports();
    const auto round_start = Clock::now();
    gossip::RoundReport report;
    report.round = round;
    report.peer = topology->peer_of(config_.id);
    report.train_samples = shard_.size();
    const auto peers = exchange_peers(*topology);
    // Copied before the awaits: a later Topology may push this one out of the state.
    const auto mask_seed = topology->mask_seed;
    const bool taking = topology->is_fresh(config_.id) && report.peer != 0;
    const bool giving = report.peer != 0 && topology->is_fresh(report.peer);
    if (taking) {
      // Its peer's model replaces ours: training ours first would be wasted.
      co_await take_model(round, report.peer, report);
      if (stopping_) break;
    } else {
      report.train_loss = co_await train_locally(round);
      report.train_micros = micros_since(round_start);
      if (stopping_) break;
      if (giving) {
        co_await give_model(round, report.peer, report);
      } else if (!peers.empty()) {
        co_await exchange(round, peers, mask_seed, report);
      }
      if (stopping_) break;
    }
    co_await finish_round(round, round_start, report);
    ++round;
  }
  if (!stopping_) co_await report_final();
}

asio::awaitable<double> Worker::train_locally(control::Round round) {
  if (consensus_round(round)) co_return status_.last_loss;  // no steps: the last training round's loss
  const auto& t = config_.training;
  const std::uint64_t step_seed = t.partition_seed * 0x9E3779B97F4A7C15ULL + config_.id * 1000003ULL + round;
  co_return co_await on_pool([&] {
    return static_cast<double>(model_.train_steps(train_set_, shard_, t.local_steps, t.batch_size, t.learning_rate,
                                                  t.momentum, t.weight_decay, step_seed));
  });
}

std::vector<net::NodeId> Worker::exchange_peers(const control::Topology& topology) const {
  // Pairwise gossip with the round's peer; the all-reduce reference with every other
  // participant of the round.
  std::vector<net::NodeId> peers;
  if (config_.gossip.all_reduce) {
    for (const auto& [a, b] : topology.matching.pairs) {
      if (a != config_.id) peers.push_back(a);
      if (b != config_.id) peers.push_back(b);
    }
    for (auto id : topology.matching.idle)
      if (id != config_.id) peers.push_back(id);
    std::sort(peers.begin(), peers.end());
  } else if (const auto peer = topology.peer_of(config_.id); peer != 0) {
    peers.push_back(peer);
  }
  return peers;
}

asio::awaitable<void> Worker::exchange(control::Round round, const std::vector<net::NodeId>& peers,
                                       std::uint64_t mask_seed, gossip::RoundReport& report) {
  const auto exchange_start = Clock::now();
  auto& exchanger = consensus_round(round) ? consensus_exchanger_ : exchanger_;
  auto outgoing = co_await on_pool([&] {
    return std::make_shared<const gossip::OutgoingModel>(exchanger.prepare(model_.parameters(), round, mask_seed));
  });
  send_model(outgoing, peers, report);
  const auto deadline = exchange_start + config_.gossip.exchange_timeout;
  const auto unreachable = co_await await_models(round, peers, deadline);
  if (stopping_) co_return;
  const auto received = collect_models(round, peers, unreachable, report);
  if (!received.empty()) {
    co_await on_pool([&] {
      if (config_.gossip.all_reduce) {
        gossip::average_all(model_.parameters(), received);
      } else {
        exchanger.absorb(model_.parameters(), *outgoing, *received.front());
      }
      return 0;
    });
  }
  for (const auto from : peers) inbox_.erase({round, from});
  report.exchange_micros = micros_since(exchange_start);
}

asio::awaitable<void> Worker::give_model(control::Round round, net::NodeId to, gossip::RoundReport& report) {
  // The whole model, densely, and ours stays as it is: the peer has nothing to add.
  const auto start = Clock::now();
  auto outgoing = co_await on_pool([&] {
    return std::make_shared<const gossip::OutgoingModel>(consensus_exchanger_.prepare(model_.parameters(), round, 0));
  });
  send_model(outgoing, {to}, report);
  report.exchange_micros = micros_since(start);
}

asio::awaitable<void> Worker::take_model(control::Round round, net::NodeId from, gossip::RoundReport& report) {
  const auto start = Clock::now();
  const std::vector<net::NodeId> peers{from};
  const auto unreachable = co_await await_models(round, peers, start + config_.gossip.exchange_timeout);
  if (stopping_) co_return;
  const auto received = collect_models(round, peers, unreachable, report);
  if (!received.empty()) {
    const auto& values = received.front()->values();
    if (values.size() == model_.parameter_count()) {
      co_await on_pool([&] {
        auto params = model_.parameters();
        std::copy(values.begin(), values.end(), params.begin());
        return 0;
      });
      log::line(log::Level::kInfo, "worker",
                "round " + std::to_string(round) + ": took node " + std::to_string(from) + "'s model");
    } else {
      ++status_.exchange_errors;
      log::line(log::Level::kWarn, "worker",
                "round " + std::to_string(round) + ": node " + std::to_string(from) + " sent " +
                    std::to_string(values.size()) + " values for a model of " +
                    std::to_string(model_.parameter_count()) + "; keeping our own");
    }
  }
  inbox_.erase({round, from});
  report.train_loss = status_.last_loss;
  report.exchange_micros = micros_since(start);
}

void Worker::send_model(const std::shared_ptr<const gossip::OutgoingModel>& outgoing,
                        const std::vector<net::NodeId>& peers, gossip::RoundReport& report) {
  const std::size_t width = gossip::bytes_per_value(outgoing->header.encoding);
  // At least kMinChunksForTiming chunks, so that the receiver can time their arrival.
  const std::size_t chunk_values = std::max<std::size_t>(
      1, std::min(config_.gossip.chunk_bytes / width,
                  (outgoing->value_count() + kMinChunksForTiming - 1) / kMinChunksForTiming));
  for (const auto to : peers) {
    for (const auto& [first, count] : outgoing->chunks(chunk_values)) {
      if (!node_.send_message(to, wire::encode_gossip_chunk(config_.cluster_id, config_.id, to, outgoing, first, count)))
        break;  // refused (queue full, peer gone): the peer will time out as we might
      report.bytes_sent += count * width + (outgoing->indices_travel() ? count * sizeof(std::uint32_t) : 0);
    }
  }
}

asio::awaitable<std::set<net::NodeId>> Worker::await_models(control::Round round, const std::vector<net::NodeId>& peers,
                                                            Clock::time_point deadline) {
  // A peer whose connection is down for a while is gone (killed, partitioned): waiting
  // out the deadline would only make this worker late for its next peer, and that one
  // late for the next.
  std::map<net::NodeId, Clock::time_point> unreachable_since;
  std::set<net::NodeId> unreachable;
  while (!stopping_) {
    const auto now = Clock::now();
    bool waiting = false;
    for (const auto from : peers) {
      if (unreachable.contains(from)) continue;
      auto it = inbox_.find({round, from});
      if (it != inbox_.end() && (it->second.failed || it->second.model.complete())) continue;
      if (node_.connected(from)) {
        unreachable_since.erase(from);
      } else if (auto [since, fresh] = unreachable_since.try_emplace(from, now);
                 !fresh && now - since->second >= kUnreachableAfter) {
        unreachable.insert(from);
        continue;
      }
      waiting = true;
    }
    if (!waiting || now >= deadline) break;
    wake_.expires_at(std::min(deadline, now + kReachabilityPoll));
    co_await wake_.async_wait(kAwait);
  }
  co_return unreachable;
}

std::vector<const gossip::IncomingModel*> Worker::collect_models(control::Round round,
                                                                 const std::vector<net::NodeId>& peers,
                                                                 const std::set<net::NodeId>& unreachable,
                                                                 gossip::RoundReport& report) {
  std::vector<const gossip::IncomingModel*> received;
  for (const auto from : peers) {
    auto it = inbox_.find({round, from});
    if (it != inbox_.end() && !it->second.failed && it->second.model.complete()) {
      received.push_back(&it->second.model);
      if (status_.first_exchange_round == 0) status_.first_exchange_round = round;
      report.bytes_received += it->second.model.bytes_received();
      measure_bandwidth(from, it->second);
      continue;
    }
    const bool timed_out = it == inbox_.end() || !it->second.failed;
    report.peer_timed_out = report.peer_timed_out || timed_out;
    if (timed_out) ++status_.peer_timeouts;
    log::line(log::Level::kWarn, "worker",
              "round " + std::to_string(round) + ": no model from node " + std::to_string(from) +
                  (unreachable.contains(from) ? " (unreachable)"
                   : timed_out                ? " before the deadline"
                                              : " (refused)") +
                  "; keeping our own");
  }
  return received;
}

void Worker::measure_bandwidth(net::NodeId from, const Inbox& in) {
  // Bytes after the first chunk over the time they took to arrive (the first chunk's own
  // time is hidden behind the peer's training).
  const auto span = std::chrono::duration<double>(in.last_chunk - in.first_chunk).count();
  if (in.chunks < 2 || span <= 0) return;
  const double bytes = static_cast<double>(in.model.bytes_received()) * static_cast<double>(in.chunks - 1) /
                       static_cast<double>(in.chunks);
  const double sample = bytes / span;
  auto [cell, fresh] = bandwidth_.try_emplace(from, sample);
  if (!fresh) cell->second = 0.7 * cell->second + 0.3 * sample;  // smoothed
}

asio::awaitable<void> Worker::finish_round(control::Round round, Clock::time_point round_start,
                                           gossip::RoundReport& report) {
  const auto& t = config_.training;
  if (t.eval_every > 0 && round % static_cast<std::uint64_t>(t.eval_every) == 0) {
    const auto evaluation = co_await on_pool([&] { return model_.evaluate(test_set_, t.eval_samples); });
    report.accuracy = evaluation.accuracy;
    status_.last_accuracy = evaluation.accuracy;
  }
  for (const auto& [p, bps] : bandwidth_) report.bandwidth.push_back({p, bps});
  report.round_micros = micros_since(round_start);
  status_.last_loss = report.train_loss;
  status_.bytes_sent += report.bytes_sent;
  status_.bytes_received += report.bytes_received;
  status_.rounds_done = round;
  send_report(report);
  if (checkpoints() && round % static_cast<std::uint64_t>(t.checkpoint_every) == 0) {
    co_await on_pool([&] {
      save_checkpoint(round);
      return 0;
    });
  }
}

asio::awaitable<void> Worker::report_final() {
  const auto& t = config_.training;
  const auto final_eval = co_await on_pool([&] { return model_.evaluate(test_set_, test_set_.count); });
  status_.final_accuracy = final_eval.accuracy;
  status_.done = true;
  gossip::RoundReport final_report;
  final_report.round = t.rounds;
  final_report.final = true;
  final_report.accuracy = final_eval.accuracy;
  final_report.train_loss = final_eval.loss;
  final_report.train_samples = shard_.size();
  log::line(log::Level::kInfo, "worker",
            "done after round " + std::to_string(t.rounds) + ": test accuracy " + std::to_string(final_eval.accuracy));
  // The coordinator may be changing hands: repeat the final report until a leader has it
  // (the coordinator counts each worker's final once).
  while (!stopping_) {
    send_report(final_report);
    wake_.expires_after(std::chrono::seconds(1));
    co_await wake_.async_wait(kAwait);
  }
}

}  // namespace raftfl::node
