// Decentralized training of N workers in one process, one after the other, with the
// gossip library's exchange algorithms and no network: for comparing algorithms (what
// accuracy a density, a consensus step or a layer plan gives) in a fraction of the time
// `raftfl bench tta` takes, which runs the same algorithms through the real nodes.
// The matchings are uniform random perfect matchings from the seed, not SAPS plans.
//
// Usage: raftfl-gossip-sim [--model mlp|cnn] [--nodes N] [--rounds R] [--local-steps S]
//   [--algorithm all-reduce|dense|random-k:D|layer-random-k:D|choco-random-k:D|choco-top-k:D]
//   [--gamma G] [--dense-below P] [--lr X] [--momentum M] [--alpha A] [--eval-every E]
//   [--eval-samples K] [--train-subset T] [--seed S] [--json]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "raftfl/gossip/averaging.hpp"
#include "raftfl/gossip/choco.hpp"
#include "raftfl/gossip/coordinate_plan.hpp"
#include "raftfl/gossip/mask.hpp"
#include "raftfl/train/idx_reader.hpp"
#include "raftfl/train/lr_schedule.hpp"
#include "raftfl/train/models.hpp"
#include "raftfl/train/partition.hpp"

namespace {

using namespace raftfl;

struct Options {
  std::string model = "mlp";
  int nodes = 8;
  int rounds = 150;
  int local_steps = 10;
  int batch = 32;
  std::string algorithm = "dense";
  double gamma = 0.3;
  std::size_t dense_below = 100000;
  double lr = 0.05;
  std::string lr_schedule = "constant";
  std::uint64_t warmup_rounds = 0;
  double momentum = 0.9;
  double alpha = 0.5;
  int eval_every = 10;
  std::size_t eval_samples = 2000;
  std::size_t train_subset = 0;
  std::uint64_t seed = 1;
  std::string dataset = "/usr/share/datasets/fashion-mnist";
  bool json = false;
};

struct Algorithm {
  std::string kind;  // all-reduce, dense, random-k, layer-random-k, choco-random-k, choco-top-k
  double density = 1.0;
};

Algorithm parse_algorithm(const std::string& text) {
  const auto colon = text.find(':');
  Algorithm a{text.substr(0, colon), 1.0};
  if (colon != std::string::npos) a.density = std::stod(text.substr(colon + 1));
  static const std::vector<std::string> kinds = {"all-reduce", "dense", "random-k", "layer-random-k", "choco-random-k",
                                                 "choco-top-k"};
  if (std::find(kinds.begin(), kinds.end(), a.kind) == kinds.end()) throw std::invalid_argument(text);
  if (!(a.density > 0 && a.density <= 1)) throw std::invalid_argument(text);
  return a;
}

// Mean squared distance of the workers' models to their average, and the average.
std::pair<double, std::vector<float>> consensus(const std::vector<train::Model>& models) {
  const std::size_t n = models.front().parameter_count();
  std::vector<double> mean(n, 0.0);
  for (const auto& m : models) {
    const auto p = m.parameters();
    for (std::size_t i = 0; i < n; ++i) mean[i] += p[i];
  }
  for (auto& v : mean) v /= static_cast<double>(models.size());
  double distance = 0;
  for (const auto& m : models) {
    const auto p = m.parameters();
    for (std::size_t i = 0; i < n; ++i) distance += (p[i] - mean[i]) * (p[i] - mean[i]);
  }
  return {distance / static_cast<double>(models.size()), std::vector<float>(mean.begin(), mean.end())};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Decentralized training of N workers in one process, for comparing gossip algorithms"};
  app.add_option("--model", o.model)->check(CLI::IsMember({"mlp", "cnn"}));
  app.add_option("--nodes", o.nodes)->check(CLI::Range(2, 64));
  app.add_option("--rounds", o.rounds)->check(CLI::Range(1, 100000));
  app.add_option("--local-steps", o.local_steps)->check(CLI::Range(1, 10000));
  app.add_option("--batch", o.batch)->check(CLI::Range(1, 4096));
  app.add_option("--algorithm", o.algorithm);
  app.add_option("--gamma", o.gamma, "CHOCO consensus step")->check(CLI::Range(0.0, 1.0));
  app.add_option("--dense-below", o.dense_below, "tensors smaller than this travel whole (layer-*, choco-*)");
  app.add_option("--lr", o.lr, "the peak learning rate");
  app.add_option("--lr-schedule", o.lr_schedule)->check(CLI::IsMember({"constant", "cosine", "step"}));
  app.add_option("--warmup-rounds", o.warmup_rounds);
  app.add_option("--momentum", o.momentum);
  app.add_option("--alpha", o.alpha, "Dirichlet alpha of the label skew");
  app.add_option("--eval-every", o.eval_every)->check(CLI::Range(1, 100000));
  app.add_option("--eval-samples", o.eval_samples);
  app.add_option("--train-subset", o.train_subset);
  app.add_option("--seed", o.seed);
  app.add_option("--dataset", o.dataset);
  app.add_flag("--json", o.json);
  CLI11_PARSE(app, argc, argv);
  Algorithm algorithm;
  try {
    algorithm = parse_algorithm(o.algorithm);
  } catch (const std::exception&) {
    std::fprintf(stderr, "raftfl-gossip-sim: --algorithm: bad value '%s'\n", o.algorithm.c_str());
    return 2;
  }

  train::set_threads(1);
  train::ImageSet train_set;
  train::ImageSet test_set;
  try {
    train_set = train::load_fashion_mnist(o.dataset, train::Split::kTrain);
    test_set = train::load_fashion_mnist(o.dataset, train::Split::kTest);
  } catch (const train::DatasetError& e) {
    std::fprintf(stderr, "raftfl-gossip-sim: %s\n", e.what());
    return 1;
  }
  if (o.train_subset != 0 && o.train_subset < train_set.count) {
    train_set.count = o.train_subset;
    train_set.labels.resize(o.train_subset);
    train_set.pixels.resize(o.train_subset * train_set.rows * train_set.cols);
  }
  const auto shards = train::partition_dirichlet(train_set.labels, static_cast<std::size_t>(o.nodes), o.alpha, o.seed, 64);
  const auto kind = o.model == "cnn" ? train::ModelKind::kCnn : train::ModelKind::kMlp;
  std::vector<train::Model> models;
  for (int i = 0; i < o.nodes; ++i) models.emplace_back(kind, o.seed);
  const std::size_t n = models.front().parameter_count();
  const std::vector<float> origin(models.front().parameters().begin(), models.front().parameters().end());

  std::vector<std::pair<std::size_t, std::size_t>> tensors;
  for (const auto& slice : models.front().layout()) tensors.emplace_back(slice.offset, slice.count);
  const bool layered = algorithm.kind == "layer-random-k" || algorithm.kind.starts_with("choco");
  const gossip::CoordinatePlan plan = layered ? gossip::CoordinatePlan(tensors, o.dense_below) : gossip::CoordinatePlan(n);
  std::vector<gossip::ChocoGossip> choco;
  if (algorithm.kind.starts_with("choco")) {
    for (int i = 0; i < o.nodes; ++i)
      choco.emplace_back(plan, gossip::ChocoOptions{algorithm.kind == "choco-top-k", algorithm.density, o.gamma, 8}, origin);
  }

  std::fprintf(stderr, "gossip-sim: %d %s workers, %d rounds of %d steps, %s, gamma %.3g, %zu of %zu parameters dense\n",
               o.nodes, o.model.c_str(), o.rounds, o.local_steps, o.algorithm.c_str(), o.gamma,
               layered ? plan.dense_count() : std::size_t{0}, n);
  std::printf("%6s %9s %9s %12s %12s %10s\n", "round", "own %", "mean %", "consensus", "MB/worker", "seconds");
  const train::LrSchedule schedule{*train::parse_lr_schedule(o.lr_schedule), o.lr, o.warmup_rounds, 0.0};
  std::mt19937_64 rng(o.seed * 7919 + 17);
  double bytes_per_worker = 0;
  const auto started = std::chrono::steady_clock::now();
  double own = 0;
  double averaged = 0;
  double distance = 0;
  for (int round = 1; round <= o.rounds; ++round) {
    const double lr = train::learning_rate(schedule, static_cast<std::uint64_t>(round), static_cast<std::uint64_t>(o.rounds));
    for (int i = 0; i < o.nodes; ++i) {
      const std::uint64_t step_seed = o.seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(i) * 1000003ULL +
                                      static_cast<std::uint64_t>(round);
      models[static_cast<std::size_t>(i)].train_steps(train_set, shards[static_cast<std::size_t>(i)], o.local_steps,
                                                      o.batch, lr, o.momentum, 0.0, step_seed);
    }
    const std::uint64_t mask_seed = rng();
    if (algorithm.kind == "all-reduce") {
      const auto mean = consensus(models).second;
      for (auto& m : models) std::copy(mean.begin(), mean.end(), m.parameters().begin());
      bytes_per_worker += 2.0 * static_cast<double>(n) * 4 * (o.nodes - 1) / o.nodes;  // ring all-reduce
    } else {
      std::vector<std::size_t> order(static_cast<std::size_t>(o.nodes));
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      for (std::size_t p = 0; p + 1 < order.size(); p += 2) {
        auto& a = models[order[p]];
        auto& b = models[order[p + 1]];
        if (algorithm.kind == "dense") {
          std::vector<float> copy(a.parameters().begin(), a.parameters().end());
          gossip::average_dense(a.parameters(), b.parameters());
          gossip::average_dense(b.parameters(), copy);
          bytes_per_worker += static_cast<double>(n) * 4 / o.nodes * 2;
        } else if (algorithm.kind == "random-k" || algorithm.kind == "layer-random-k") {
          const auto idx = plan.random_k(algorithm.density, mask_seed);
          const auto va = gossip::gather(a.parameters(), idx);
          const auto vb = gossip::gather(b.parameters(), idx);
          gossip::average_at(a.parameters(), idx, vb);
          gossip::average_at(b.parameters(), idx, va);
          bytes_per_worker += static_cast<double>(idx.size()) * 4 / o.nodes * 2;
        } else {
          auto& ca = choco[order[p]];
          auto& cb = choco[order[p + 1]];
          const auto ua = ca.prepare(order[p + 1], a.parameters(), mask_seed);
          const auto ub = cb.prepare(order[p], b.parameters(), mask_seed);
          ca.absorb(order[p + 1], a.parameters(), ua, ub);
          cb.absorb(order[p], b.parameters(), ub, ua);
          const double per_value = algorithm.kind == "choco-top-k" ? 8 : 4;
          bytes_per_worker += static_cast<double>(ua.values.size() + ub.values.size()) * per_value / o.nodes;
        }
      }
    }
    if (round % o.eval_every == 0 || round == o.rounds) {
      const std::size_t samples = round == o.rounds ? test_set.count : o.eval_samples;
      own = 0;
      for (const auto& m : models) own += m.evaluate(test_set, samples).accuracy;
      own = 100 * own / o.nodes;
      auto [d, mean] = consensus(models);
      distance = d;
      train::Model averaged_model(kind, o.seed);
      std::copy(mean.begin(), mean.end(), averaged_model.parameters().begin());
      averaged = 100 * averaged_model.evaluate(test_set, samples).accuracy;
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      std::printf("%6d %9.2f %9.2f %12.4g %12.3f %10.1f\n", round, own, averaged, distance, bytes_per_worker / 1e6,
                  seconds);
      std::fflush(stdout);
    }
  }
  if (o.json) {
    std::printf(
        "{\"algorithm\":\"%s\",\"model\":\"%s\",\"nodes\":%d,\"rounds\":%d,\"local_steps\":%d,\"gamma\":%g,"
        "\"dense_below\":%zu,\"lr_schedule\":\"%s\",\"alpha\":%g,\"seed\":%llu,\"final_own_accuracy\":%.2f,\"final_averaged_accuracy\":%.2f,"
        "\"consensus_distance\":%.6g,\"megabytes_per_worker\":%.3f}\n",
        o.algorithm.c_str(), o.model.c_str(), o.nodes, o.rounds, o.local_steps, o.gamma, o.dense_below, o.lr_schedule.c_str(), o.alpha,
        static_cast<unsigned long long>(o.seed), own, averaged, distance, bytes_per_worker / 1e6);
  }
  return 0;
}
