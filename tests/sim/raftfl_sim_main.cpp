// raftfl-sim: runs seeded simulations of Raft clusters under faults and reports every
// seed whose run broke an invariant, with the command that replays it.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "simulation.hpp"

namespace {

struct Failure {
  std::uint64_t seed;
  raftfl::sim::Violation first;
  std::size_t count;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace raftfl::sim;
  std::uint64_t seeds = 100;
  std::uint64_t first = 1;
  int nodes = 3;
  int learners = 0;
  std::string faults_text = "all";
  std::int64_t chaos_ms = SimOptions{}.chaos_ms;
  unsigned jobs = std::max(1u, std::thread::hardware_concurrency());
  bool trace = false;

  CLI::App app{"raftfl-sim: deterministic simulation of raftfl's Raft engine under injected faults"};
  // A later occurrence of an option overrides an earlier one, so that a wrapper's defaults
  // (scripts/run-demo) can be overridden by the arguments passed through it.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--seeds", seeds, "number of seeds to run")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  app.add_option("--first", first, "first seed");
  app.add_option("--nodes", nodes, "voters in the initial cluster")->check(CLI::Range(1, 9));
  app.add_option("--learners", learners, "learners in the initial cluster")->check(CLI::Range(0, 9));
  app.add_option("--faults", faults_text,
                 "all, none, or a comma list of drop,dup,delay,partition,asym,crash,membership,transfer,compact");
  app.add_option("--chaos-ms", chaos_ms, "virtual milliseconds of faults before healing")->check(CLI::Range(0, 3600000));
  app.add_option("--jobs", jobs, "worker threads")->check(CLI::Range(1u, 256u));
  app.add_flag("--trace", trace, "print every event (use with --seeds 1)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  std::string error;
  auto faults = FaultSet::parse(faults_text, &error);
  if (!faults) {
    std::fprintf(stderr, "raftfl-sim: --faults: %s\n", error.c_str());
    return 2;
  }
  if (trace) jobs = 1;

  auto started = std::chrono::steady_clock::now();
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> done{0};
  std::mutex mutex;
  std::vector<Failure> failures;
  SimStats total;
  auto worker = [&] {
    SimStats local;
    for (std::uint64_t i = next++; i < seeds; i = next++) {
      SimOptions o;
      o.seed = first + i;
      o.voters = nodes;
      o.learners = learners;
      o.faults = *faults;
      o.chaos_ms = chaos_ms;
      o.trace = trace;
      SimResult r = run_simulation(o);
      local += r.stats;
      if (!r.violations.empty()) {
        std::lock_guard lock(mutex);
        failures.push_back({o.seed, r.violations.front(), r.violations.size()});
      }
      std::uint64_t d = ++done;
      if (seeds >= 2000 && d % 1000 == 0) std::fprintf(stderr, "raftfl-sim: %llu/%llu seeds\n", (unsigned long long)d, (unsigned long long)seeds);
    }
    std::lock_guard lock(mutex);
    total += local;
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < std::min<std::uint64_t>(jobs, seeds); ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  std::sort(failures.begin(), failures.end(), [](const Failure& a, const Failure& b) { return a.seed < b.seed; });
  std::size_t violations = 0;
  for (const Failure& f : failures) {
    SimOptions o;
    o.seed = f.seed;
    o.voters = nodes;
    o.learners = learners;
    o.faults = *faults;
    o.chaos_ms = chaos_ms;
    std::string replay = replay_command(o);
    std::printf("seed %llu: %s: %s (%zu violations); replay: %s --trace\n", (unsigned long long)f.seed,
                f.first.invariant.c_str(), f.first.detail.c_str(), f.count, replay.c_str());
    violations += f.count;
  }
  using ull = unsigned long long;
  std::printf(
      "%.1f s, %.1f seeds/s on %u threads; %llu virtual s, %llu events, %llu messages; %llu requests, %llu proposals "
      "(%llu retries), %llu acknowledged, %llu executed, %llu duplicates skipped, %llu reads; %llu elections, %llu crashes "
      "(%llu of fresh leaders), %llu partitions, %llu membership changes, %llu transfers, %llu compactions, %llu "
      "snapshots installed; %llu voters lost for good, %llu voter sets regained\n",
      seconds, static_cast<double>(seeds) / seconds, static_cast<unsigned>(threads.size()), (ull)(total.virtual_ms / 1000),
      (ull)total.events, (ull)total.messages, (ull)total.requests, (ull)total.proposals, (ull)total.retries,
      (ull)total.acknowledged, (ull)total.executed, (ull)total.duplicates, (ull)total.reads, (ull)total.elections,
      (ull)total.crashes, (ull)total.aimed_crashes, (ull)total.partitions, (ull)total.conf_changes, (ull)total.transfers,
      (ull)total.compactions, (ull)total.snapshots_installed, (ull)total.voters_lost, (ull)total.voters_replaced);
  std::printf("%llu seeds, %zu violations\n", (unsigned long long)seeds, violations);
  return violations == 0 ? 0 : 1;
}
