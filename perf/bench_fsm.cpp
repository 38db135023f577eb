// raftfl-bench-fsm: entries per second through a 3-node in-process cluster with neither
// network nor disk: what the Raft engine itself costs. C proposers each keep one
// 256-byte proposal in flight; a new one goes in as soon as the leader applies one.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "raftfl/raft/raft.hpp"

namespace {

using namespace raftfl::raft;

constexpr std::size_t kEntryBytes = 256;
constexpr Index kCompactEvery = 8192;

class InProcessCluster {
 public:
  explicit InProcessCluster(int size) {
    auto boot = std::make_shared<Snapshot>();
    for (int i = 1; i <= size; ++i) boot->meta.config.voters.push_back(static_cast<NodeId>(i));
    for (int i = 1; i <= size; ++i) {
      Options o;
      o.id = static_cast<NodeId>(i);
      o.seed = 7;
      nodes_.push_back(std::make_unique<Raft>(o, PersistedState{{}, boot, {}}));
    }
    // Elect node 1: tick it alone until it campaigns, then let the messages flow.
    while (nodes_[0]->role() != Role::kLeader) {
      nodes_[0]->tick();
      drive();
    }
  }

  Raft& leader() { return *nodes_[0]; }

  // One pass: every node hands over its Ready, then every message is delivered.
  // Returns the number of client entries the leader applied.
  std::size_t drive() {
    std::size_t applied = 0;
    for (auto& node : nodes_) {
      if (!node->has_ready()) continue;
      Ready rd = node->ready();
      for (Message& m : rd.messages) inbox_.push_back(std::move(m));
      for (Message& m : rd.messages_after_persist) inbox_.push_back(std::move(m));
      if (node.get() == nodes_[0].get()) {
        for (const Entry& e : rd.committed_entries) applied += e.type == EntryType::kNormal;
      }
      node->advance(rd);
      // Keep memory flat on long runs; compaction is part of the engine's cost.
      if (node->log().applied() >= node->log().snapshot_index() + kCompactEvery)
        node->compact(node->log().applied(), Payload());
    }
    std::vector<Message> batch;
    batch.swap(inbox_);
    for (const Message& m : batch) nodes_[m.to - 1]->step(m);
    return applied;
  }

 private:
  std::vector<std::unique_ptr<Raft>> nodes_;
  std::vector<Message> inbox_;
};

void BM_ThreeNodeCluster(benchmark::State& state) {
  const auto proposers = static_cast<std::size_t>(state.range(0));
  InProcessCluster cluster(3);
  const std::string bytes(kEntryBytes, 'x');
  std::size_t in_flight = 0;
  std::size_t committed = 0;
  for (auto _ : state) {
    while (in_flight < proposers) {
      if (!cluster.leader().propose(Payload(bytes)).ok()) state.SkipWithError("leader lost leadership");
      ++in_flight;
    }
    std::size_t applied = cluster.drive();
    in_flight -= applied;
    committed += applied;
  }
  state.counters["entries_per_second"] = benchmark::Counter(static_cast<double>(committed), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<std::int64_t>(committed));
  state.SetBytesProcessed(static_cast<std::int64_t>(committed * kEntryBytes));
}
BENCHMARK(BM_ThreeNodeCluster)->ArgName("proposers")->Arg(1)->Arg(64)->UseRealTime()->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
