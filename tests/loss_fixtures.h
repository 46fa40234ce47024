// The reference values tools/make_loss_fixtures.py computed with PyTorch's
// Python API (tests/fixtures/losses.txt), for the tests of the losses and of
// the objective that sums them.
#ifndef DISTILL_TESTS_LOSS_FIXTURES_H_
#define DISTILL_TESTS_LOSS_FIXTURES_H_

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/test_device.h"

namespace distill::engine {

inline std::map<std::string, torch::Tensor> LoadFixtures() {
  std::ifstream in(DISTILL_SOURCE_DIR "/tests/fixtures/losses.txt");
  EXPECT_TRUE(in) << "missing tests/fixtures/losses.txt";
  std::map<std::string, torch::Tensor> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    std::string name, token;
    s >> name;
    std::vector<int64_t> shape;
    while (s >> token && token != ":") shape.push_back(std::stoll(token));
    std::vector<double> values;
    double v;
    while (s >> v) values.push_back(v);
    // On the test device: the losses then run there, and the references
    // stay the values PyTorch computed on the CPU.
    out[name] = torch::tensor(values, torch::kFloat64)
                    .reshape(shape)
                    .to(torch::Device(TestDevice()));
  }
  return out;
}

class LossFixtureTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { fixtures_ = new auto(LoadFixtures()); }
  static const torch::Tensor& F(const std::string& name) {
    auto it = fixtures_->find(name);
    if (it == fixtures_->end()) throw std::runtime_error("no fixture " + name);
    return it->second;
  }
  static double Scalar(const std::string& name) {
    return F(name).item<double>();
  }
  static torch::Tensor Labels() { return F("labels").to(torch::kInt64); }

  static std::map<std::string, torch::Tensor>* fixtures_;
};
inline std::map<std::string, torch::Tensor>* LossFixtureTest::fixtures_ =
    nullptr;

}  // namespace distill::engine

#endif  // DISTILL_TESTS_LOSS_FIXTURES_H_
