// Wall time of one local SGD step (forward, backward, momentum update) through
// raftfl::train::Model, to compare with perf/train_step_pytorch.py on the same machine.
// Usage: raftfl-bench-train-step [--model cnn|mlp] [--batch N] [--steps N] [--warmup N]
//                                [--threads N]

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "raftfl/train/models.hpp"

namespace {

using raftfl::train::ImageSet;
using raftfl::train::Model;
using raftfl::train::ModelKind;

int usage() {
  std::fprintf(stderr,
               "usage: raftfl-bench-train-step [--model cnn|mlp] [--batch N] [--steps N] [--warmup N] "
               "[--threads N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_name = "cnn";
  int batch = 32;
  int steps = 50;
  int warmup = 5;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) {
      return usage();
    }
    const char* value = argv[++i];
    if (arg == "--model") {
      model_name = value;
    } else if (arg == "--batch") {
      batch = std::atoi(value);
    } else if (arg == "--steps") {
      steps = std::atoi(value);
    } else if (arg == "--warmup") {
      warmup = std::atoi(value);
    } else if (arg == "--threads") {
      threads = std::atoi(value);
    } else {
      return usage();
    }
  }
  if ((model_name != "cnn" && model_name != "mlp") || batch < 1 || steps < 1 || warmup < 0 || threads < 1) {
    return usage();
  }
  raftfl::train::set_threads(threads);

  // Synthetic pixels: a step's cost does not depend on what the images show.
  ImageSet data;
  data.count = 1024;
  data.rows = 28;
  data.cols = 28;
  data.pixels.resize(data.count * 28 * 28);
  for (std::size_t i = 0; i < data.pixels.size(); ++i) {
    data.pixels[i] = static_cast<std::uint8_t>((i * 2654435761U) >> 24);
  }
  data.labels.resize(data.count);
  for (std::size_t i = 0; i < data.count; ++i) {
    data.labels[i] = static_cast<std::uint8_t>(i % 10);
  }
  std::vector<std::uint32_t> indices(data.count);
  std::iota(indices.begin(), indices.end(), 0U);

  Model model(model_name == "cnn" ? ModelKind::kCnn : ModelKind::kMlp, 1);
  for (int i = 0; i < warmup; ++i) {
    model.train_steps(data, indices, 1, batch, 0.01, 0.9, 1e-4, static_cast<std::uint64_t>(i));
  }
  std::vector<double> ms(static_cast<std::size_t>(steps));
  for (int i = 0; i < steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    model.train_steps(data, indices, 1, batch, 0.01, 0.9, 1e-4, static_cast<std::uint64_t>(warmup + i));
    ms[static_cast<std::size_t>(i)] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  const double p90 = ms[ms.size() * 9 / 10];
  std::printf("%s batch %d: median %.3f ms per SGD step, p90 %.3f ms (%d steps, %d threads)\n", model_name.c_str(),
              batch, median, p90, steps, threads);
  std::printf("{\"model\":\"%s\",\"batch\":%d,\"steps\":%d,\"threads\":%d,\"median_ms\":%.4f,\"p90_ms\":%.4f}\n",
              model_name.c_str(), batch, steps, threads, median, p90);
  return 0;
}
