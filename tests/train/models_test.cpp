#include "raftfl/train/models.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <stdexcept>
#include <vector>

namespace raftfl::train {
namespace {

ImageSet synthetic_images(std::size_t count) {
  ImageSet set;
  set.count = count;
  set.rows = 28;
  set.cols = 28;
  set.pixels.resize(count * 28 * 28);
  for (std::size_t i = 0; i < set.pixels.size(); ++i) {
    set.pixels[i] = static_cast<std::uint8_t>((i * 37 + i / 784) % 256);
  }
  set.labels.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    set.labels[i] = static_cast<std::uint8_t>(i % 10);
  }
  return set;
}

std::vector<std::uint32_t> iota_indices(std::size_t n) {
  std::vector<std::uint32_t> v(n);
  std::iota(v.begin(), v.end(), 0U);
  return v;
}

TEST(Models, ParameterCountsMatchThePaper) {
  Model cnn(ModelKind::kCnn, 1);
  Model mlp(ModelKind::kMlp, 1);
  EXPECT_EQ(cnn.parameter_count(), 1'663'370U);
  EXPECT_EQ(mlp.parameter_count(), 199'210U);
  EXPECT_EQ(parameter_count(ModelKind::kCnn), 1'663'370U);
  EXPECT_EQ(parameter_count(ModelKind::kMlp), 199'210U);
  EXPECT_EQ(cnn.parameters().size(), cnn.parameter_count());

  // The layout tiles the buffer with no gap or overlap.
  for (const Model* m : {&cnn, &mlp}) {
    std::size_t next = 0;
    for (const auto& slice : m->layout()) {
      EXPECT_EQ(slice.offset, next) << slice.name;
      next += slice.count;
    }
    EXPECT_EQ(next, m->parameter_count());
  }
  EXPECT_EQ(cnn.layout().front().name, "conv1.weight");
  EXPECT_EQ(mlp.layout().back().name, "fc3.bias");
}

// Writing through the span must reach the module's own parameters: with every weight zero
// the logits are exactly the output bias, which we also set through the span.
void expect_span_aliases(ModelKind kind) {
  Model model(kind, 7);
  auto params = model.parameters();
  std::fill(params.begin(), params.end(), 0.0F);
  const auto& out_bias = model.layout().back();
  ASSERT_EQ(out_bias.count, 10U);
  for (std::size_t c = 0; c < 10; ++c) {
    params[out_bias.offset + c] = static_cast<float>(c) - 4.5F;
  }
  const ImageSet images = synthetic_images(3);
  const auto logits = model.logits(images, 0, 3);
  ASSERT_EQ(logits.size(), 30U);
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t c = 0; c < 10; ++c) {
      EXPECT_EQ(logits[i * 10 + c], static_cast<float>(c) - 4.5F);
    }
  }
}

TEST(Models, SpanAliasesCnnParameters) { expect_span_aliases(ModelKind::kCnn); }
TEST(Models, SpanAliasesMlpParameters) { expect_span_aliases(ModelKind::kMlp); }

TEST(Models, OptimizerStepWritesTheSpan) {
  Model model(ModelKind::kMlp, 3);
  const float* before_ptr = model.parameters().data();
  const std::vector<float> before(model.parameters().begin(), model.parameters().end());
  const ImageSet images = synthetic_images(64);
  const auto indices = iota_indices(64);
  model.train_steps(images, indices, 1, 16, 0.1, 0.9, 1e-4, 11);
  EXPECT_EQ(model.parameters().data(), before_ptr);
  const auto after = model.parameters();
  std::size_t changed = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    changed += before[i] != after[i] ? 1U : 0U;
  }
  // Weight decay touches every parameter, so nearly all of them move.
  EXPECT_GT(changed, before.size() / 2);
}

TEST(Models, SameSeedGivesIdenticalParameters) {
  for (const auto kind : {ModelKind::kCnn, ModelKind::kMlp}) {
    Model a(kind, 42);
    Model b(kind, 42);
    Model c(kind, 43);
    EXPECT_TRUE(std::ranges::equal(a.parameters(), b.parameters()));
    EXPECT_FALSE(std::ranges::equal(a.parameters(), c.parameters()));
  }
}

TEST(Models, TrainingIsDeterministicForASeed) {
  set_threads(1);
  const ImageSet images = synthetic_images(64);
  const auto indices = iota_indices(64);
  Model a(ModelKind::kMlp, 5);
  Model b(ModelKind::kMlp, 5);
  // Two calls, so that the carried-over momentum is part of what must match.
  for (int call = 0; call < 2; ++call) {
    const float la = a.train_steps(images, indices, 3, 8, 0.05, 0.9, 1e-4, 100 + call);
    const float lb = b.train_steps(images, indices, 3, 8, 0.05, 0.9, 1e-4, 100 + call);
    EXPECT_EQ(la, lb);
  }
  EXPECT_TRUE(std::ranges::equal(a.parameters(), b.parameters()));
}

TEST(Models, RejectsBadArguments) {
  Model model(ModelKind::kMlp, 1);
  ImageSet images = synthetic_images(4);
  const std::vector<std::uint32_t> out_of_range{4};
  EXPECT_THROW(model.train_steps(images, out_of_range, 1, 1, 0.1, 0, 0, 1), std::invalid_argument);
  EXPECT_THROW(model.train_steps(images, {}, 1, 1, 0.1, 0, 0, 1), std::invalid_argument);
  const auto indices = iota_indices(4);
  EXPECT_THROW(model.train_steps(images, indices, 0, 1, 0.1, 0, 0, 1), std::invalid_argument);
  EXPECT_THROW(model.logits(images, 3, 2), std::invalid_argument);
  images.rows = 14;
  EXPECT_THROW(model.evaluate(images, 4), std::invalid_argument);
}

TEST(Models, MlpLearnsFashionMnist) {
  const std::filesystem::path dir = RAFTFL_FASHION_MNIST_DIR;
  if (!std::filesystem::exists(dir / "train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Fashion-MNIST not installed at " << dir;
  }
  // One thread: on a shared 2-core machine a second OpenMP thread spins against other
  // work and made this test five times slower.
  set_threads(1);
  const ImageSet train = load_fashion_mnist(dir, Split::kTrain);
  const ImageSet test = load_fashion_mnist(dir, Split::kTest);
  Model model(ModelKind::kMlp, 2024);
  const Evaluation before = model.evaluate(test, 1000);
  EXPECT_LT(before.accuracy, 0.3);

  const auto indices = iota_indices(2000);
  float first_loss = 0;
  float last_loss = 0;
  // Ten calls of 20 steps: the way a worker runs rounds, with momentum carried over.
  for (int round = 0; round < 10; ++round) {
    const float loss = model.train_steps(train, indices, 20, 32, 0.02, 0.9, 1e-4, 1000 + round);
    if (round == 0) {
      first_loss = loss;
    }
    last_loss = loss;
  }
  const Evaluation after = model.evaluate(test, 1000);
  EXPECT_LT(last_loss, first_loss);
  EXPECT_LT(after.loss, before.loss);
  EXPECT_GT(after.accuracy, 0.65) << "before " << before.accuracy << ", loss " << after.loss;
  std::printf("accuracy %.3f -> %.3f, test loss %.3f -> %.3f\n", before.accuracy, after.accuracy, before.loss,
              after.loss);
}

}  // namespace
}  // namespace raftfl::train
