#ifndef DISTILL_TESTS_FAKE_DATA_H_
#define DISTILL_TESTS_FAKE_DATA_H_

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace distill {

// An IDX file's bytes: unsigned-byte elements of the given shape.
inline std::string Idx(const std::vector<uint32_t>& shape,
                       const std::vector<uint8_t>& data) {
  std::string bytes = {0, 0, 0x08, char(shape.size())};
  for (uint32_t d : shape) {
    for (int shift = 24; shift >= 0; shift -= 8)
      bytes.push_back(char((d >> shift) & 0xFF));
  }
  bytes.append(data.begin(), data.end());
  return bytes;
}

inline void WriteGzip(const std::filesystem::path& path,
                      const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), unsigned(bytes.size())),
            int(bytes.size()));
  gzclose(f);
}

// A Fashion-MNIST-shaped data set in `dir`: `n` images of 28x28 whose label
// is i % 10, bright in rows 2 * label and 2 * label + 1, dark elsewhere.
inline void WriteFakeFashionMnist(const std::filesystem::path& dir, int n) {
  std::vector<uint8_t> images, labels;
  for (int i = 0; i < n; ++i) {
    const int label = i % 10;
    labels.push_back(uint8_t(label));
    for (int row = 0; row < 28; ++row) {
      images.insert(images.end(), 28, row / 2 == label ? 255 : 0);
    }
  }
  for (const char* split : {"train", "t10k"}) {
    WriteGzip(dir / (std::string(split) + "-images-idx3-ubyte.gz"),
              Idx({uint32_t(n), 28, 28}, images));
    WriteGzip(dir / (std::string(split) + "-labels-idx1-ubyte.gz"),
              Idx({uint32_t(n)}, labels));
  }
}

}  // namespace distill

#endif  // DISTILL_TESTS_FAKE_DATA_H_
