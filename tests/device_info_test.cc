// What a worker finds it offers: nvidia-smi's line read, --labels checked.
#include "worker/device_info.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace distill {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(DeviceInfoTest, ReadsNvidiaSmisLine) {
  const DeviceInfo h100 = ParseNvidiaSmi("81559, NVIDIA H100 80GB HBM3");
  EXPECT_EQ(h100.memory_bytes, int64_t{81559} << 20);
  EXPECT_EQ(h100.name, "NVIDIA H100 80GB HBM3");
  // A name with a comma keeps it; what is not a line of it gives nothing.
  EXPECT_EQ(ParseNvidiaSmi("16384, Tesla V100, PCIe").name, "Tesla V100, PCIe");
  for (const char* bad :
       {"", "No devices were found", "[N/A], A100", "-5, A100", "abc, A100"}) {
    const DeviceInfo info = ParseNvidiaSmi(bad);
    EXPECT_EQ(info.memory_bytes, 0) << bad;
    EXPECT_EQ(info.name, "") << bad;
  }
}

TEST(DeviceInfoTest, TheCpuDeviceIsTheHosts) {
  const DeviceInfo cpu = DetectDevice("cpu");
  EXPECT_GT(cpu.memory_bytes, int64_t{1} << 28);
  EXPECT_GE(cpu.cpu_cores, 1);
}

TEST(DeviceInfoTest, LabelsAreCheckedAndTrimmed) {
  absl::StatusOr<std::vector<std::string>> labels =
      ParseLabels("pool=a100, site=b,,");
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_THAT(*labels, ElementsAre("pool=a100", "site=b"));
  EXPECT_TRUE(ParseLabels("")->empty());
  for (const char* bad : {"pool", "pool=a100,site", "=b", "pool=a b"}) {
    const absl::Status s = ParseLabels(bad).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr("--labels")) << bad;
  }
  // device_kind comes from --device, never from a flag that could lie.
  EXPECT_THAT(std::string(ParseLabels("device_kind=cuda").status().message()),
              HasSubstr("device_kind is the worker's own"));
  std::string many;
  for (int i = 0; i < 40; ++i) many += "k" + std::to_string(i) + "=v,";
  EXPECT_THAT(std::string(ParseLabels(many).status().message()),
              HasSubstr("--labels takes at most"));
}

}  // namespace
}  // namespace distill
