// Where a worker may read: paths inside its roots pass; "..", symbolic
// links and look-alike prefixes that lead outside are refused.
#include "worker/data_roots.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/temp_dir.h"

namespace distill {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class DataRootsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(root_ / "cub" / "images");
    fs::create_directories(dir_ / "data2");
    fs::create_directories(dir_ / "secret");
    fs::create_symlink(dir_ / "secret", root_ / "escape");
  }
  absl::Status Check(const std::string& path) {
    return CheckInsideRoots("dataset.root", path, {root_.string()});
  }

  TempDir temp_{"distill_data_roots_test"};
  const fs::path dir_ = temp_.path();
  const fs::path root_ = dir_ / "data";
};

TEST_F(DataRootsTest, PathsInsideARootPass) {
  EXPECT_TRUE(Check((root_ / "cub").string()).ok());
  EXPECT_TRUE(Check(root_.string()).ok());
  EXPECT_TRUE(Check((root_ / "not-there-yet").string()).ok());
  EXPECT_TRUE(Check((root_ / "cub" / ".." / "cub").string()).ok());
}

TEST_F(DataRootsTest, PathsLeadingOutsideAreRefusedNamingTheField) {
  for (const fs::path& p :
       {fs::path("/etc"), root_ / ".." / "secret", root_ / "escape",
        root_ / "escape" / "keys", dir_ / "data2", fs::path("/etc/shadow")}) {
    absl::Status s = Check(p.string());
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << p;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("dataset.root " + p.string() +
                          " is outside the data roots this worker allows"));
  }
}

TEST_F(DataRootsTest, EveryPathOfASpecIsChecked) {
  v1::ExperimentSpec spec;
  EXPECT_TRUE(CheckSpecPaths(spec, {root_.string()}).ok());  // Standard root.
  spec.mutable_dataset()->set_root((root_ / "cub").string());
  spec.mutable_teacher()->set_torchscript((root_ / "dino.pt").string());
  spec.mutable_student()->set_pretrained((root_ / "r50.pt").string());
  EXPECT_TRUE(CheckSpecPaths(spec, {root_.string()}).ok());
  spec.mutable_teacher()->set_torchscript("/etc/shadow");
  EXPECT_THAT(std::string(CheckSpecPaths(spec, {root_.string()}).message()),
              HasSubstr("teacher.torchscript /etc/shadow is outside"));
  spec.mutable_teacher()->clear_torchscript();
  spec.mutable_student()->set_pretrained((root_ / ".." / "secret").string());
  EXPECT_THAT(std::string(CheckSpecPaths(spec, {root_.string()}).message()),
              HasSubstr("student.pretrained"));
}

TEST(DefaultDataRootsTest, AreDebiansDataSets) {
  EXPECT_EQ(DefaultDataRoots(),
            std::vector<std::string>{"/usr/share/datasets"});
}

}  // namespace
}  // namespace distill
