// `raftfl bench tta`: time (rounds, seconds, bytes) to accuracy for each exchange algorithm,
// every one on the same cluster shape, data split and seeds, one after the other in one run.
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "local_cluster.hpp"
#include "raftfl/common/json_writer.hpp"
#include "training_cluster.hpp"
#include "work_dir.hpp"

namespace raftfl::app {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Algorithm {
  std::string name;  // as printed: "random-k 1%", "all-reduce", ...
  std::string sparsifier;
  double density = 1.0;
  bool all_reduce = false;
};

struct Crossing {
  bool reached = false;
  std::uint64_t round = 0;
  double seconds = 0;
  double bytes = 0;
};

struct Outcome {
  Algorithm algorithm;
  Crossing at80, at85;
  double final_accuracy = 0;  // percent
  double seconds = 0;
  double bytes = 0;
  bool ok = false;
  std::string error;
};

std::vector<Algorithm> parse_algorithms(const std::string& text) {
  std::vector<Algorithm> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    Algorithm a;
    const auto colon = item.find(':');
    const std::string kind = item.substr(0, colon);
    if (kind == "all-reduce") {
      a = {"all-reduce (dense, all nodes)", "dense", 1.0, true};
    } else if (kind == "dense") {
      a = {"dense gossip", "dense", 1.0, false};
    } else if (kind == "random-k" || kind == "top-k") {
      if (colon == std::string::npos) throw std::invalid_argument(item + ": needs a density, e.g. " + kind + ":0.01");
      std::size_t used = 0;
      const double density = std::stod(item.substr(colon + 1), &used);
      if (used != item.size() - colon - 1 || !(density > 0 && density <= 1)) throw std::invalid_argument(item);
      char name[64];
      std::snprintf(name, sizeof(name), "%s %g%%", kind.c_str(), density * 100);
      a = {name, kind, density, false};
    } else {
      throw std::invalid_argument(item);
    }
    out.push_back(a);
  }
  if (out.empty()) throw std::invalid_argument(text);
  return out;
}

// One algorithm's run: a fresh cluster, polled until every worker has its final accuracy.
Outcome run_one(const BenchTtaOptions& o, const Algorithm& a, const std::filesystem::path& dir, std::ofstream& csv) {
  Outcome out;
  out.algorithm = a;
  DemoOptions d = o.base;
  d.sparsifier = a.sparsifier;
  d.density = a.density;
  d.all_reduce = a.all_reduce;
  LocalClusterOptions co;
  co.nodes = d.nodes;
  co.dir = dir;
  co.binary = self_binary();
  co.storage = node::StorageKind::kDisk;
  co.customize = [&d](node::NodeConfig& c) { configure_training_node(c, d); };
  LocalCluster cluster(co);
  const auto started = Clock::now();
  cluster.start_all();
  std::map<std::uint64_t, bool> seen;  // rounds counted
  for (;;) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    if (elapsed > d.timeout_s) {
      out.error = "no result after " + std::to_string(d.timeout_s) + " s";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    bool all_done = true;
    double final_sum = 0;
    int finals = 0;
    for (int i = 1; i <= d.nodes; ++i) {
      auto s = cluster.status(static_cast<std::uint64_t>(i), std::chrono::milliseconds(1000));
      if (!s || !s->contains("worker")) {
        all_done = false;
        continue;
      }
      const auto& w = (*s)["worker"];
      if (w["failed"].get<bool>()) {
        out.error = "the worker of node " + std::to_string(i) + " failed (see " + cluster.log_file(i).string() + ")";
        break;
      }
      if (!w["done"].get<bool>()) all_done = false;
      else {
        final_sum += w["final_accuracy"].get<double>();
        ++finals;
      }
      if (s->value("role", "") != "leader" || !s->contains("coordinator")) continue;
      for (const auto& r : (*s)["coordinator"]["rounds"]) {
        const auto round = r["round"].get<std::uint64_t>();
        const bool complete = r["reports"].get<std::uint64_t>() >= r["expected"].get<std::uint64_t>();
        if (!complete || seen.contains(round)) continue;
        seen[round] = true;
        out.bytes += r["bytes_sent"].get<double>();
        const double accuracy = r["mean_accuracy"].get<double>();
        if (accuracy < 0) continue;
        csv << a.name << ',' << round << ',' << elapsed << ',' << out.bytes << ',' << accuracy * 100 << '\n';
        for (auto [threshold, crossing] : {std::pair{0.80, &out.at80}, std::pair{0.85, &out.at85}}) {
          if (!crossing->reached && accuracy >= threshold) *crossing = {true, round, elapsed, out.bytes};
        }
      }
    }
    if (!out.error.empty()) break;
    if (all_done && finals == d.nodes) {
      out.ok = true;
      out.final_accuracy = 100.0 * final_sum / finals;
      out.seconds = elapsed;
      break;
    }
  }
  csv.flush();
  cluster.stop_all(std::chrono::seconds(5));
  return out;
}

std::string cell(const Crossing& c, double value) {
  if (!c.reached) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g", value);
  return buf;
}

}  // namespace

int run_bench_tta(const BenchTtaOptions& o) {
  std::vector<Algorithm> algorithms;
  try {
    algorithms = parse_algorithms(o.algorithms);
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "raftfl: bench tta: --algorithms: bad item '%s' (expected random-k:D, top-k:D, dense or all-reduce)\n",
                 e.what());
    return kExitUsage;
  }
  WorkDir dir;
  if (!dir.make(o.base.work_dir, "raftfl-tta", o.base.keep)) {
    std::perror("raftfl: bench tta: mkdtemp");
    return kExitFailure;
  }
  std::ofstream csv(o.csv);
  if (!csv) {
    std::fprintf(stderr, "raftfl: bench tta: cannot write %s: %s\n", o.csv.c_str(), std::strerror(errno));
    return kExitUsage;
  }
  csv << "algorithm,round,seconds,bytes_sent,mean_accuracy_percent\n";
  ::signal(SIGPIPE, SIG_IGN);
  std::fprintf(stderr, "bench tta: %d nodes, %s, Dirichlet alpha %.2f, %d rounds of %d local steps, %zu algorithms; "
               "curves in %s\n", o.base.nodes, o.base.model.c_str(), o.base.alpha, o.base.rounds, o.base.local_steps,
               algorithms.size(), o.csv.c_str());
  std::vector<Outcome> outcomes;
  int rc = kExitOk;
  for (std::size_t i = 0; i < algorithms.size(); ++i) {
    std::fprintf(stderr, "bench tta: [%zu/%zu] %s ...\n", i + 1, algorithms.size(), algorithms[i].name.c_str());
    auto outcome = run_one(o, algorithms[i], dir.path / ("run" + std::to_string(i + 1)), csv);
    if (!outcome.ok) {
      std::fprintf(stderr, "bench tta: %s: %s\n", algorithms[i].name.c_str(), outcome.error.c_str());
      rc = kExitFailure;
      dir.remove = false;
    } else {
      std::fprintf(stderr, "bench tta: %s: final accuracy %.2f%% after %.0f s\n", algorithms[i].name.c_str(),
                   outcome.final_accuracy, outcome.seconds);
    }
    outcomes.push_back(std::move(outcome));
  }
  std::printf("%-30s %8s %9s %12s %8s %9s %12s %9s %9s %12s\n", "algorithm", "rnd->80", "s->80", "bytes->80", "rnd->85",
              "s->85", "bytes->85", "final %", "seconds", "bytes");
  for (const auto& r : outcomes) {
    std::printf("%-30s %8s %9s %12s %8s %9s %12s %9.2f %9.0f %12.3g\n", r.algorithm.name.c_str(),
                cell(r.at80, static_cast<double>(r.at80.round)).c_str(), cell(r.at80, r.at80.seconds).c_str(),
                cell(r.at80, r.at80.bytes).c_str(), cell(r.at85, static_cast<double>(r.at85.round)).c_str(),
                cell(r.at85, r.at85.seconds).c_str(), cell(r.at85, r.at85.bytes).c_str(), r.final_accuracy,
                r.seconds, r.bytes);
  }
  if (o.base.json) {
    for (const auto& r : outcomes) {
      JsonWriter w;
      w.begin_object().field("algorithm", r.algorithm.name).field("sparsifier", r.algorithm.sparsifier);
      w.field("density", r.algorithm.density).field("all_reduce", r.algorithm.all_reduce).field("ok", r.ok);
      auto crossing = [&](const char* prefix, const Crossing& c) {
        const std::string p(prefix);
        if (c.reached) {
          w.field("rounds_to_" + p, c.round).field("seconds_to_" + p, c.seconds);
          w.field("bytes_to_" + p, static_cast<std::uint64_t>(c.bytes));
        } else {
          w.key("rounds_to_" + p).raw("null").key("seconds_to_" + p).raw("null").key("bytes_to_" + p).raw("null");
        }
      };
      crossing("80", r.at80);
      crossing("85", r.at85);
      w.field("final_accuracy", r.final_accuracy).field("seconds", r.seconds);
      w.field("bytes_sent", static_cast<std::uint64_t>(r.bytes)).field("rounds", o.base.rounds);
      w.field("nodes", o.base.nodes).field("model", o.base.model).field("alpha", o.base.alpha);
      w.end_object();
      std::printf("%s\n", w.str().c_str());
    }
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace raftfl::app
