// The device the engine's tests run on: $DISTILL_TEST_DEVICE ("cuda:0" on a
// GPU machine, bench/gpu.sh), the CPU when it is unset. Tests compare
// against CPU-computed references either way.
#ifndef DISTILL_TESTS_TEST_DEVICE_H_
#define DISTILL_TESTS_TEST_DEVICE_H_

#include <cstdlib>
#include <string>

namespace distill::engine {

inline std::string TestDevice() {
  const char* device = std::getenv("DISTILL_TEST_DEVICE");
  return device != nullptr && *device != '\0' ? device : "cpu";
}

}  // namespace distill::engine

#endif  // DISTILL_TESTS_TEST_DEVICE_H_
