// `raftfl bench raft`: three node processes on loopback, C concurrent clients on the
// leader (NuRaft raft_bench's shape), ops/s and commit latency per C; with --failover,
// SIGKILL of the leader under load, and the time from the kill to the next commit.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <thread>
#include <vector>

#include "admin_client.hpp"
#include "commands.hpp"
#include "local_cluster.hpp"
#include "work_dir.hpp"
#include "raftfl/common/json_writer.hpp"

namespace raftfl::app {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

void progress(const BenchRaftOptions& o, const std::string& text) {
  // Progress goes to stderr so that --json output stays machine-readable.
  if (!o.json || isatty(STDERR_FILENO)) std::fprintf(stderr, "bench raft: %s\n", text.c_str());
}

int run_throughput(const BenchRaftOptions& o, LocalCluster& cluster) {
  const auto leader = cluster.wait_for_leader(std::chrono::seconds(15));
  if (leader == 0) {
    std::fprintf(stderr, "raftfl: bench raft: no leader within 15 s; node logs in %s\n", cluster.log_file(1).parent_path().c_str());
    return kExitFailure;
  }
  progress(o, "leader is node " + std::to_string(leader));
  const auto& admin = cluster.config(leader).admin;
  AdminClient client(admin, std::chrono::seconds(5));
  if (!o.json)
    std::printf("%-8s %-9s %-9s %12s %10s %10s %10s %8s\n", "clients", "transport", "storage", "ops/s", "p50 us",
                "p99 us", "p99.9 us", "errors");
  int rc = kExitOk;
  for (int c : o.clients) {
    const auto millis = static_cast<std::uint64_t>(o.seconds * 1000);
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%g", o.seconds);
    progress(o, std::to_string(c) + (c == 1 ? " client" : " clients") + " for " + seconds + " s");
    nlohmann::json r;
    try {
      r = nlohmann::json::parse(client.request("bench " + std::to_string(c) + " " + std::to_string(millis) + " " +
                                                   std::to_string(o.payload_bytes),
                                               std::chrono::milliseconds(millis + 30000)));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "raftfl: bench raft: %d clients: %s\n", c, e.what());
      return kExitFailure;
    }
    if (!r.contains("ops_per_sec")) {
      std::fprintf(stderr, "raftfl: bench raft: %d clients: %s\n", c, r.dump().c_str());
      return kExitFailure;
    }
    if (r.value("errors", 0) > 0) rc = kExitFailure;
    std::uint64_t peak = 0;
    for (int id = 1; id <= cluster.size(); ++id) peak = std::max(peak, cluster.peak_rss_kib(static_cast<std::uint64_t>(id)));
    if (o.json) {
      JsonWriter w;
      w.begin_object().field("bench", "raft").field("clients", c).field("ops_per_sec", r.at("ops_per_sec").get<double>());
      w.field("p50_us", r.at("p50_us").get<double>()).field("p99_us", r.at("p99_us").get<double>());
      w.field("p999_us", r.at("p999_us").get<double>()).field("max_us", r.at("max_us").get<double>());
      w.field("ops", r.at("ops").get<std::uint64_t>()).field("errors", r.at("errors").get<std::uint64_t>());
      w.field("storage", o.storage).field("transport", o.transport).field("payload_bytes", static_cast<std::uint64_t>(o.payload_bytes));
      w.field("poll_budget_us", o.poll_budget_us).field("peak_rss_kib", peak).end_object();
      std::cout << w.str() << std::endl;
    } else {
      std::printf("%-8d %-9s %-9s %12.0f %10.1f %10.1f %10.1f %8llu\n", c, o.transport.c_str(), o.storage.c_str(),
                  r.at("ops_per_sec").get<double>(), r.at("p50_us").get<double>(), r.at("p99_us").get<double>(),
                  r.at("p999_us").get<double>(), r.at("errors").get<unsigned long long>());
      std::fflush(stdout);
    }
  }
  if (!o.json) {
    std::printf("peak resident memory per node (KiB):");
    for (int id = 1; id <= cluster.size(); ++id) std::printf(" %llu", static_cast<unsigned long long>(cluster.peak_rss_kib(static_cast<std::uint64_t>(id))));
    std::printf("\n");
  }
  return rc;
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

int run_failover(const BenchRaftOptions& o, LocalCluster& cluster) {
  std::vector<double> gaps_ms;
  const auto autoload = [&](std::uint64_t id) {
    try {
      admin_request(cluster.config(id).admin,
                    "autoload " + std::to_string(o.failover_clients) + " " + std::to_string(o.payload_bytes));
    } catch (const std::exception&) {
    }
  };
  for (int kill = 1; kill <= o.kills; ++kill) {
    const auto leader = cluster.wait_for_leader(std::chrono::seconds(15));
    if (leader == 0) {
      std::fprintf(stderr, "raftfl: bench raft --failover: no leader within 15 s before kill %d\n", kill);
      return kExitFailure;
    }
    for (int id = 1; id <= cluster.size(); ++id) autoload(static_cast<std::uint64_t>(id));
    // Let the load run and the restarted node catch up before the next kill.
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    const auto before = cluster.status(leader);
    if (!before || before->value("role", "") != "leader") {
      --kill;  // leadership moved on its own; choose again
      continue;
    }
    const auto old_term = before->at("term").get<std::uint64_t>();
    std::map<std::uint64_t, std::uint64_t> commit_before;
    for (int id = 1; id <= cluster.size(); ++id) {
      if (static_cast<std::uint64_t>(id) == leader) continue;
      auto s = cluster.status(static_cast<std::uint64_t>(id));
      commit_before[static_cast<std::uint64_t>(id)] = s ? s->at("commit").get<std::uint64_t>() : 0;
    }
    const auto t0 = Clock::now();
    cluster.kill(leader, SIGKILL);
    double gap = -1;
    while (Clock::now() - t0 < std::chrono::seconds(10) && gap < 0) {
      for (const auto& [id, commit] : commit_before) {
        auto s = cluster.status(id, std::chrono::milliseconds(200));
        if (s && s->at("term").get<std::uint64_t>() > old_term && s->at("commit").get<std::uint64_t>() > commit &&
            s->at("leader").get<std::uint64_t>() != 0) {
          gap = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
          break;
        }
      }
    }
    if (gap < 0) {
      std::fprintf(stderr, "raftfl: bench raft --failover: no commit within 10 s after kill %d\n", kill);
      return kExitFailure;
    }
    gaps_ms.push_back(gap);
    char gap_text[32];
    std::snprintf(gap_text, sizeof(gap_text), "%.1f", gap);
    progress(o, "kill " + std::to_string(kill) + " of node " + std::to_string(leader) + ": next commit after " +
                    gap_text + " ms");
    cluster.start(leader);
  }
  const double p50 = quantile(gaps_ms, 0.5);
  const double max = quantile(gaps_ms, 1.0);
  const auto& c = cluster.config(1);
  const double target = 2.0 * static_cast<double>(c.election_timeout_max.count());
  if (o.json) {
    JsonWriter w;
    w.begin_object().field("bench", "raft-failover").field("kills", static_cast<std::uint64_t>(gaps_ms.size()));
    w.field("p50_ms", p50).field("max_ms", max).field("target_max_ms", target);
    w.field("election_timeout_max_ms", static_cast<std::int64_t>(c.election_timeout_max.count()));
    w.field("storage", o.storage).field("transport", o.transport).field("clients", o.failover_clients).end_object();
    std::cout << w.str() << std::endl;
  } else {
    std::printf("%-6s %-9s %-9s %10s %10s %14s\n", "kills", "transport", "storage", "p50 ms", "max ms", "target max ms");
    std::printf("%-6zu %-9s %-9s %10.1f %10.1f %14.0f\n", gaps_ms.size(), o.transport.c_str(), o.storage.c_str(), p50, max, target);
  }
  return max <= target ? kExitOk : kExitFailure;
}

}  // namespace

int run_bench_raft(const BenchRaftOptions& o) {
  if (o.failover && o.storage != "disk") {
    std::fprintf(stderr,
                 "raftfl: bench raft: --failover restarts killed nodes, which needs --storage disk "
                 "(a node restarted from memory forgets its vote)\n");
    return kExitUsage;
  }
  WorkDir dir;
  if (!dir.make(o.work_dir, "raftfl-bench", o.keep)) {
    std::perror("raftfl: bench raft: mkdtemp");
    return kExitFailure;
  }
  LocalClusterOptions co;
  co.nodes = 3;
  co.dir = dir.path;
  co.binary = self_binary();
  co.transport = o.transport == "zmq" ? node::TransportKind::kZmq : node::TransportKind::kTcp;
  co.storage = o.storage == "disk" ? node::StorageKind::kDisk : node::StorageKind::kMemory;
  co.poll_budget = std::chrono::microseconds(o.poll_budget_us);
  ::signal(SIGPIPE, SIG_IGN);
  LocalCluster cluster(co);
  cluster.start_all();
  progress(o, "3 nodes started (" + o.transport + ", " + o.storage + "), working directory " + dir.path.string());
  const int rc = o.failover ? run_failover(o, cluster) : run_throughput(o, cluster);
  cluster.stop_all(std::chrono::seconds(5));
  if (rc != kExitOk) dir.remove = false;  // keep the logs of a failed run
  if (rc != kExitOk) std::fprintf(stderr, "bench raft: node logs kept in %s\n", dir.path.c_str());
  return rc;
}

}  // namespace raftfl::app
