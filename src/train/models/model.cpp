#include "raftfl/train/models.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <utility>

#include "raftfl/gossip/prng.hpp"

namespace raftfl::train {
namespace {

constexpr std::int64_t kSide = 28;
constexpr std::int64_t kPixels = kSide * kSide;
constexpr std::int64_t kClasses = 10;
// Large enough to amortise the per-call overhead, small enough that the CNN's largest
// activation (batch x 32 x 28 x 28 floats, 10 MB at 100) keeps a training node well under
// its 400 MiB budget: at 500 the peak was 463 MiB.
constexpr std::size_t kEvalBatch = 100;

class NetImpl : public torch::nn::Module {
 public:
  explicit NetImpl(ModelKind kind) : kind_(kind) {
    if (kind == ModelKind::kCnn) {
      conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 5).padding(2)));
      conv2_ = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 5).padding(2)));
      fc1_ = register_module("fc1", torch::nn::Linear(7 * 7 * 64, 512));
      fc2_ = register_module("fc2", torch::nn::Linear(512, kClasses));
    } else {
      fc1_ = register_module("fc1", torch::nn::Linear(kPixels, 200));
      fc2_ = register_module("fc2", torch::nn::Linear(200, 200));
      fc3_ = register_module("fc3", torch::nn::Linear(200, kClasses));
    }
  }

  // x: batch x 1 x 28 x 28, normalised.
  torch::Tensor forward(torch::Tensor x) {
    if (kind_ == ModelKind::kCnn) {
      x = torch::max_pool2d(torch::relu(conv1_->forward(x)), 2);
      x = torch::max_pool2d(torch::relu(conv2_->forward(x)), 2);
      x = torch::relu(fc1_->forward(x.flatten(1)));
      return fc2_->forward(x);
    }
    x = torch::relu(fc1_->forward(x.flatten(1)));
    x = torch::relu(fc2_->forward(x));
    return fc3_->forward(x);
  }

 private:
  ModelKind kind_;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::Conv2d conv2_{nullptr};
  torch::nn::Linear fc1_{nullptr};
  torch::nn::Linear fc2_{nullptr};
  torch::nn::Linear fc3_{nullptr};
};
TORCH_MODULE(Net);

// Uniform in [0, 1) from the top 24 bits: exactly representable as float, so the draw is
// the same on every platform.
float unit_float(gossip::Xoshiro256StarStar& rng) {
  return static_cast<float>(rng.next() >> 40) * 0x1.0p-24F;
}

const std::array<float, 256>& pixel_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (std::size_t p = 0; p < t.size(); ++p) {
      t[p] = (static_cast<float>(p) / 255.0F - kFashionMnistMean) / kFashionMnistStd;
    }
    return t;
  }();
  return table;
}

void check_images(const ImageSet& data) {
  if (data.rows != kSide || data.cols != kSide) {
    throw std::invalid_argument("model input must be 28x28 images, got " + std::to_string(data.rows) + "x" +
                                std::to_string(data.cols));
  }
  if (data.pixels.size() < data.count * kPixels || data.labels.size() < data.count) {
    throw std::invalid_argument("image set is shorter than its count");
  }
}

}  // namespace

struct Model::Impl {
  ModelKind kind;
  Net net;
  torch::Tensor flat;
  std::vector<ParameterSlice> layout;
  std::unique_ptr<torch::optim::SGD> optimizer;
  // Batch staging, reused across steps; torch reads it in place through from_blob and
  // autograd keeps the input alive only until backward() returns.
  std::vector<float> inputs;
  std::vector<std::int64_t> targets;

  Impl(ModelKind k, std::uint64_t seed) : kind(k), net(k) {
    std::size_t total = 0;
    for (const auto& p : net->named_parameters()) {
      layout.push_back({p.key(), total, static_cast<std::size_t>(p.value().numel())});
      total += layout.back().count;
    }
    auto options = torch::TensorOptions().dtype(torch::kFloat32);
    // Page-locked memory lets a future CUDA path copy the buffer asynchronously; the
    // module itself still computes on the CPU. Debian's libtorch has no CUDA, so this is
    // ordinary pageable memory here.
    if (torch::cuda::is_available()) {
      options = options.pinned_memory(true);
    }
    flat = torch::zeros({static_cast<std::int64_t>(total)}, options);
    std::size_t i = 0;
    for (auto& p : net->named_parameters()) {
      auto& param = p.value();
      param.set_data(flat.narrow(0, static_cast<std::int64_t>(layout[i].offset),
                                 static_cast<std::int64_t>(layout[i].count))
                         .view(param.sizes()));
      ++i;
    }
    initialise(seed);
  }

  void initialise(std::uint64_t seed) {
    gossip::Xoshiro256StarStar rng(seed);
    float* base = flat.data_ptr<float>();
    double fan_in = 1.0;
    std::size_t i = 0;
    for (const auto& p : net->named_parameters()) {
      const auto& param = p.value();
      // A bias follows its weight in registration order and shares the weight's fan-in.
      if (param.dim() > 1) {
        fan_in = static_cast<double>(param.numel() / param.size(0));
      }
      const auto bound = static_cast<float>(1.0 / std::sqrt(fan_in));
      float* out = base + layout[i].offset;
      for (std::size_t j = 0; j < layout[i].count; ++j) {
        out[j] = bound * (2.0F * unit_float(rng) - 1.0F);
      }
      ++i;
    }
  }

  // Fills the staging buffers with the samples `pick(0..n)` and returns the input tensor.
  template <typename Pick>
  std::pair<torch::Tensor, torch::Tensor> stage(const ImageSet& data, std::size_t n, Pick pick) {
    const auto& table = pixel_table();
    inputs.resize(n * kPixels);
    targets.resize(n);
    for (std::size_t b = 0; b < n; ++b) {
      const std::size_t s = pick(b);
      const std::uint8_t* src = data.pixels.data() + s * kPixels;
      float* dst = inputs.data() + b * kPixels;
      for (std::int64_t k = 0; k < kPixels; ++k) {
        dst[k] = table[src[k]];
      }
      targets[b] = data.labels[s];
    }
    const auto bn = static_cast<std::int64_t>(n);
    return {torch::from_blob(inputs.data(), {bn, 1, kSide, kSide}, torch::kFloat32),
            torch::from_blob(targets.data(), {bn}, torch::kInt64)};
  }
};

void set_threads(int threads) {
  if (threads < 1) {
    throw std::invalid_argument("thread count must be at least 1");
  }
  torch::set_num_threads(threads);
}

std::size_t parameter_count(ModelKind kind) {
  return kind == ModelKind::kCnn ? 1'663'370 : 199'210;
}

Model::Model(ModelKind kind, std::uint64_t seed) : impl_(std::make_unique<Impl>(kind, seed)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

ModelKind Model::kind() const { return impl_->kind; }

std::size_t Model::parameter_count() const { return static_cast<std::size_t>(impl_->flat.numel()); }

std::span<float> Model::parameters() { return {impl_->flat.data_ptr<float>(), parameter_count()}; }

std::span<const float> Model::parameters() const { return {impl_->flat.data_ptr<float>(), parameter_count()}; }

std::span<const ParameterSlice> Model::layout() const { return impl_->layout; }

float Model::train_steps(const ImageSet& data, std::span<const std::uint32_t> indices, int steps, int batch_size,
                         double lr, double momentum, double weight_decay, std::uint64_t seed) {
  check_images(data);
  if (indices.empty() || steps < 1 || batch_size < 1) {
    throw std::invalid_argument("train_steps needs indices, steps >= 1 and batch_size >= 1");
  }
  for (const auto index : indices) {
    if (index >= data.count) {
      throw std::invalid_argument("sample index " + std::to_string(index) + " out of range");
    }
  }
  auto& impl = *impl_;
  if (!impl.optimizer) {
    impl.optimizer = std::make_unique<torch::optim::SGD>(
        impl.net->parameters(), torch::optim::SGDOptions(lr).momentum(momentum).weight_decay(weight_decay));
  } else {
    for (auto& group : impl.optimizer->param_groups()) {
      auto& options = static_cast<torch::optim::SGDOptions&>(group.options());
      options.lr(lr).momentum(momentum).weight_decay(weight_decay);
    }
  }

  gossip::Xoshiro256StarStar rng(seed);
  std::vector<std::uint32_t> order(indices.begin(), indices.end());
  auto shuffle = [&] {
    for (std::size_t i = order.size() - 1; i > 0; --i) {
      std::swap(order[i], order[rng.uniform_below(i + 1)]);
    }
  };
  shuffle();
  std::size_t cursor = 0;

  impl.net->train();
  double loss_sum = 0.0;
  const auto batch = static_cast<std::size_t>(batch_size);
  std::vector<std::uint32_t> picked(batch);
  for (int step = 0; step < steps; ++step) {
    for (std::size_t b = 0; b < batch; ++b) {
      if (cursor == order.size()) {
        shuffle();
        cursor = 0;
      }
      picked[b] = order[cursor++];
    }
    auto [x, y] = impl.stage(data, batch, [&](std::size_t b) { return picked[b]; });
    impl.optimizer->zero_grad();
    auto loss = torch::nn::functional::cross_entropy(impl.net->forward(x), y);
    loss.backward();
    impl.optimizer->step();
    loss_sum += loss.item<double>();
  }
  return static_cast<float>(loss_sum / steps);
}

Evaluation Model::evaluate(const ImageSet& data, std::size_t max_samples) const {
  check_images(data);
  const std::size_t n = std::min(max_samples, data.count);
  if (n == 0) {
    return {};
  }
  auto& impl = *impl_;
  torch::NoGradGuard no_grad;
  impl.net->eval();
  double loss_sum = 0.0;
  std::int64_t correct = 0;
  for (std::size_t first = 0; first < n; first += kEvalBatch) {
    const std::size_t count = std::min(kEvalBatch, n - first);
    auto [x, y] = impl.stage(data, count, [&](std::size_t b) { return first + b; });
    auto out = impl.net->forward(x);
    loss_sum += torch::nn::functional::cross_entropy(
                    out, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += out.argmax(1).eq(y).sum().item<std::int64_t>();
  }
  impl.net->train();
  return {loss_sum / static_cast<double>(n), static_cast<double>(correct) / static_cast<double>(n)};
}

std::vector<float> Model::logits(const ImageSet& data, std::size_t first, std::size_t count) const {
  check_images(data);
  if (first > data.count || count > data.count - first) {
    throw std::invalid_argument("logits: sample range out of bounds");
  }
  auto& impl = *impl_;
  torch::NoGradGuard no_grad;
  impl.net->eval();
  auto [x, y] = impl.stage(data, count, [&](std::size_t b) { return first + b; });
  auto out = impl.net->forward(x).contiguous();
  impl.net->train();
  const float* p = out.data_ptr<float>();
  return {p, p + out.numel()};
}

}  // namespace raftfl::train
