#ifndef DISTILL_COMMON_LOG_H_
#define DISTILL_COMMON_LOG_H_

#include <sstream>

namespace distill {

// One line to stderr, stamped with the time and severity, written whole
// when the statement ends (so lines from threads do not interleave).
class LogLine {
 public:
  explicit LogLine(const char* severity);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  template <typename T>
  LogLine& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }

 private:
  std::ostringstream stream_;
};

}  // namespace distill

// DISTILL_LOG(INFO) << "run " << id << " leased";
#define DISTILL_LOG(severity) ::distill::LogLine(#severity)

#endif  // DISTILL_COMMON_LOG_H_
