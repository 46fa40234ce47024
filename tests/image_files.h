// What the image tests share: JPEGs made here and a directory to put them.
#ifndef DISTILL_TESTS_IMAGE_FILES_H_
#define DISTILL_TESTS_IMAGE_FILES_H_

#include <gtest/gtest.h>
#include <turbojpeg.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/temp_dir.h"

namespace distill::engine {

// A JPEG of `height` x `width`: the left half `left`, the right half `right`.
inline std::string Jpeg(int height, int width, std::array<uint8_t, 3> left,
                        std::array<uint8_t, 3> right) {
  std::vector<uint8_t> rgb(size_t(height * width * 3));
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const auto& c = x < width / 2 ? left : right;
      std::copy(c.begin(), c.end(), rgb.begin() + (y * width + x) * 3);
    }
  }
  tjhandle handle = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  EXPECT_EQ(tjCompress2(handle, rgb.data(), width, 0, height, TJPF_RGB, &out,
                        &size, TJSAMP_444, 95, 0),
            0);
  std::string bytes(reinterpret_cast<char*>(out), size);
  tjFree(out);
  tjDestroy(handle);
  return bytes;
}

class ImagesTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& relative, const std::string& bytes) {
    const std::filesystem::path path = dir_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
    return path.string();
  }

  TempDir temp_{"distill_images_test"};
  const std::filesystem::path dir_ = temp_.path();
};

}  // namespace distill::engine

#endif  // DISTILL_TESTS_IMAGE_FILES_H_
