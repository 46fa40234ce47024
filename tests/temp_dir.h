// Helpers the test binaries share.
#ifndef DISTILL_TESTS_TEMP_DIR_H_
#define DISTILL_TESTS_TEMP_DIR_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace distill {

// A fresh directory for the running test (named by `prefix`, the process
// and the test), removed with it. Make it a member of the test fixture.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix)
      : path_(
            std::filesystem::temp_directory_path() /
            (prefix + "_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The Python that writes reference files: /usr/bin/python3 (Debian's
// PyTorch), or $DISTILL_TEST_PYTHON (a GPU machine's, bench/gpu.sh).
inline std::string TestPython() {
  const char* python = std::getenv("DISTILL_TEST_PYTHON");
  return python != nullptr && *python != '\0' ? python : "/usr/bin/python3";
}

// Whether PyTorch with torchvision can be imported by TestPython().
inline bool HasTorchvision() {
  static const bool has =
      std::system(
          (TestPython() + " -c 'import torchvision' 2>/dev/null").c_str()) == 0;
  return has;
}

}  // namespace distill

#endif  // DISTILL_TESTS_TEMP_DIR_H_
