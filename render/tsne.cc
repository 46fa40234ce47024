#include "render/tsne.h"

#include <algorithm>
#include <limits>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "render/terminal.h"

namespace distill {

absl::StatusOr<std::vector<TsneMap>> ParseTsne(const std::string& csv) {
  std::vector<TsneMap> maps;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(csv, '\n')) {
    if (++line_number == 1 || line.empty()) continue;  // The header.
    const std::vector<std::string> f = absl::StrSplit(line, ',');
    TsnePoint p;
    if (f.size() != 4 || !absl::SimpleAtod(f[1], &p.x) ||
        !absl::SimpleAtod(f[2], &p.y) || !absl::SimpleAtoi(f[3], &p.label)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tsne.csv line ", line_number, " is not model,x,y,label: \"",
          TerminalSafe(line.substr(0, 200)), "\""));
    }
    if (maps.empty() || maps.back().model != f[0]) maps.push_back({f[0], {}});
    maps.back().points.push_back(p);
  }
  return maps;
}

namespace {

constexpr int kEmpty = std::numeric_limits<int>::min();

// The commonest label of each of `width` x `height` cells, or kEmpty.
std::vector<int> Cells(const std::vector<TsnePoint>& points, int width,
                       int height) {
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const TsnePoint& p : points) {
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
    y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  std::vector<std::map<int, int>> votes(size_t(width * height));
  for (const TsnePoint& p : points) {
    const int cx =
        x1 > x0 ? int((p.x - x0) / (x1 - x0) * (width - 1) + 0.5) : 0;
    const int cy =
        y1 > y0 ? int((y1 - p.y) / (y1 - y0) * (height - 1) + 0.5) : 0;
    ++votes[size_t(cy * width + cx)][p.label];
  }
  std::vector<int> cells(votes.size(), kEmpty);
  for (size_t i = 0; i < votes.size(); ++i) {
    if (votes[i].empty()) continue;
    cells[i] =
        std::max_element(votes[i].begin(), votes[i].end(),
                         [](auto& a, auto& b) { return a.second < b.second; })
            ->first;
  }
  return cells;
}

}  // namespace

std::string TsnePlot(const std::string& csv, int width, int height) {
  absl::StatusOr<std::vector<TsneMap>> maps = ParseTsne(csv);
  if (!maps.ok()) return absl::StrCat(maps.status().message(), "\n");
  const char* const kSymbols = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string rule;
  for (int i = 0; i < width; ++i) rule += "─";
  std::string out;
  for (const TsneMap& map : *maps) {
    const std::vector<int> cells = Cells(map.points, width, height);
    absl::StrAppend(&out, TerminalSafe(map.model), " (", map.points.size(),
                    " test images; a digit is a class)\n┌", rule, "┐\n");
    for (int r = 0; r < height; ++r) {
      out += "│";
      for (int c = 0; c < width; ++c) {
        const int label = cells[size_t(r * width + c)];
        out += label == kEmpty            ? ' '
               : label >= 0 && label < 36 ? kSymbols[label]
                                          : '*';
      }
      out += "│\n";
    }
    absl::StrAppend(&out, "└", rule, "┘\n");
  }
  return out;
}

}  // namespace distill
