// The pieces every rendering of results is made of: padded columns of
// UTF-8 text, tables with rules, durations, and the CSV and JSON forms of
// `--format=csv|json`.
#ifndef DISTILL_RENDER_TEXT_H_
#define DISTILL_RENDER_TEXT_H_

#include <google/protobuf/message.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace distill {

// Display width of UTF-8 text: one column a code point.
size_t Width(const std::string& s);

// `s` padded with spaces to `width` columns, on the right (or the left
// when `right`); centred.
std::string Pad(const std::string& s, size_t width, bool right = false);
std::string Center(const std::string& s, size_t width);

// "1:05" or "2:03:45".
std::string Duration(double seconds);

// A table: a header, rows, cells padded (the first column left, the rest
// right when `right_aligned`), " │ " between them, a rule under the header
// when `rule`.
std::string TextTable(const std::vector<std::string>& header,
                      const std::vector<std::vector<std::string>>& rows,
                      bool right_aligned = true, bool rule = true);

// The rule under a table's header for columns of these widths.
std::string TableRule(const std::vector<size_t>& widths);

// How a command prints data (--format=table|csv|json).
enum class OutputFormat { kTable, kCsv, kJson };

// "table", "csv" or "json"; INVALID_ARGUMENT naming anything else.
absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& name);

// A CSV field, quoted (RFC 4180) when it holds a comma, a quote or a line
// break.
std::string CsvField(const std::string& s);

// A number in CSV and JSON: up to 10 significant digits.
std::string CsvNumber(double v);

// A JSON number, or null.
std::string JsonNumber(std::optional<double> v);

// A JSON string: quotes, backslashes and control characters escaped.
std::string JsonString(const std::string& s);

// A message in protobuf's JSON mapping with its .proto field names
// (snake_case), one line: the stable, documented form of every --format=json.
std::string ToJson(const google::protobuf::Message& message);

}  // namespace distill

#endif  // DISTILL_RENDER_TEXT_H_
