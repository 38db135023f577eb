#pragma once

// Deliberately free of torch headers: node, gossip and tools include this, and
// <torch/torch.h> costs 15-20 s and 1.5 GB per translation unit. The torch module lives
// behind the pimpl in src/train/models/model.cpp.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "raftfl/train/idx_reader.hpp"

namespace raftfl::train {

// kCnn: the CNN of the FedAvg paper (McMahan et al. 2017) as LEAF defines it:
//   conv5x5(1->32, pad 2), ReLU, maxpool 2, conv5x5(32->64, pad 2), ReLU, maxpool 2,
//   fc(3136->512), ReLU, fc(512->10): 1,663,370 parameters.
// kMlp: the paper's "2NN": fc(784->200), ReLU, fc(200->200), ReLU, fc(200->10):
//   199,210 parameters.
enum class ModelKind { kCnn, kMlp };

// Fashion-MNIST's pixel statistics on [0,1]; every model input is (p/255 - mean) / std.
inline constexpr float kFashionMnistMean = 0.2860F;
inline constexpr float kFashionMnistStd = 0.3530F;

struct Evaluation {
  double loss = 0.0;      // mean cross-entropy
  double accuracy = 0.0;  // fraction in [0, 1]
};

// Where one named torch parameter lies in the flat buffer, in the module's registration
// order (which is also the order of the buffer).
struct ParameterSlice {
  std::string name;
  std::size_t offset = 0;
  std::size_t count = 0;
};

// Sets LibTorch's intra-op thread count (process-wide). It starts at 1 on our machines,
// so the configuration has to set it.
void set_threads(int threads);

// The parameter count of a kind without building a model.
std::size_t parameter_count(ModelKind kind);

class Model {
 public:
  // Parameters are initialised from `seed` alone (PyTorch's default bounds,
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, drawn from
  // gossip::Xoshiro256StarStar in layout order), never from torch's global generator: the
  // same seed gives bit-identical parameters on every platform and thread.
  Model(ModelKind kind, std::uint64_t seed);
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  ModelKind kind() const;
  std::size_t parameter_count() const;

  // Every torch parameter is a view into this one contiguous buffer: writing the span
  // changes the model with no copy, and an optimizer step changes the span. Gossip reads and
  // averages it in place. The memory is pinned (page-locked) when CUDA is available, so that
  // device transfers can be asynchronous, and ordinary pageable memory otherwise (Debian's
  // libtorch is CPU-only). Valid for the lifetime of the Model (and follows it on move).
  std::span<float> parameters();
  std::span<const float> parameters() const;
  std::span<const ParameterSlice> layout() const;

  // `steps` local SGD steps (momentum, weight decay; the optimizer's momentum buffers
  // persist across calls, new lr/momentum/weight_decay values replace the old ones). Batches
  // walk through a permutation of `indices` (Fisher-Yates: for i = n-1 down to 1 swap i with
  // uniform_below(i+1) of Xoshiro256StarStar(seed)), reshuffled with the same generator
  // whenever it is exhausted. Returns the mean training loss over the steps.
  // Throws std::invalid_argument for empty indices, an index out of range, non-28x28
  // images, or steps/batch_size < 1.
  float train_steps(const ImageSet& data, std::span<const std::uint32_t> indices, int steps, int batch_size,
                    double lr, double momentum, double weight_decay, std::uint64_t seed);

  // Loss and accuracy over the first min(max_samples, data.count) samples, in eval mode,
  // batched, without autograd.
  Evaluation evaluate(const ImageSet& data, std::size_t max_samples) const;

  // Logits (count x 10, row-major) for samples [first, first + count): for inspection and
  // tests.
  std::vector<float> logits(const ImageSet& data, std::size_t first, std::size_t count) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace raftfl::train
