#include "render/text.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace distill {

size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Pad(const std::string& s, size_t width, bool right) {
  const size_t w = Width(s);
  const std::string fill(w < width ? width - w : 0, ' ');
  return right ? fill + s : s + fill;
}

std::string Center(const std::string& s, size_t width) {
  const size_t w = Width(s);
  if (w >= width) return s;
  const size_t left = (width - w) / 2;
  return std::string(left, ' ') + s + std::string(width - w - left, ' ');
}

std::string Duration(double seconds) {
  const int64_t s = int64_t(std::max(0.0, seconds));
  if (s >= 3600)
    return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

std::string TableRule(const std::vector<size_t>& widths) {
  std::vector<std::string> rules;
  for (size_t w : widths) {
    std::string r;
    for (size_t i = 0; i < w; ++i) r += "─";
    rules.push_back(r);
  }
  return absl::StrCat("─", absl::StrJoin(rules, "─┼─"), "─\n");
}

std::string TextTable(const std::vector<std::string>& header,
                      const std::vector<std::vector<std::string>>& rows,
                      bool right_aligned, bool rule) {
  std::vector<size_t> widths(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    widths[c] = Width(header[c]);
    for (const auto& row : rows) widths[c] = std::max(widths[c], Width(row[c]));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::vector<std::string> padded;
    for (size_t c = 0; c < cells.size(); ++c)
      padded.push_back(Pad(cells[c], widths[c], right_aligned && c > 0));
    return absl::StrCat(" ", absl::StrJoin(padded, " │ "), "\n");
  };
  std::string out = line(header);
  if (rule) absl::StrAppend(&out, TableRule(widths));
  for (const auto& row : rows) absl::StrAppend(&out, line(row));
  return out;
}

absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& name) {
  if (name == "table") return OutputFormat::kTable;
  if (name == "csv") return OutputFormat::kCsv;
  if (name == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(absl::StrCat(
      "--format must be table, csv or json, got \"", name.substr(0, 64), "\""));
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string quoted = "\"";
  for (char c : s) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string CsvNumber(double v) { return absl::StrFormat("%.10g", v); }

std::string JsonNumber(std::optional<double> v) {
  // JSON has no NaN or infinity: those are null too.
  return v && std::isfinite(*v) ? absl::StrFormat("%.10g", *v) : "null";
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return "{}";
  }
  return json;
}

}  // namespace distill
