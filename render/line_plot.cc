#include "render/line_plot.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/sweep_expansion.h"
#include "render/html.h"

namespace distill {
namespace {

std::string Number(double v) { return absl::StrFormat("%.4g", v); }

// The x and y ranges of `series` (x0 > x1 when there are no points); a
// series at the edge counts for x only, unless it is all there is.
std::array<double, 4> RangeOf(const std::vector<Series>& series) {
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  const bool some_in_range = std::any_of(
      series.begin(), series.end(),
      [](const Series& s) { return !s.at_edge && !s.points.empty(); });
  for (const Series& s : series) {
    for (const auto& [x, y] : s.points) {
      x0 = std::min(x0, x), x1 = std::max(x1, x);
      if (s.at_edge && some_in_range) continue;
      y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
    if (s.at_edge && some_in_range) continue;
    for (const auto& [x, lo, hi] : s.band)
      y0 = std::min(y0, lo), y1 = std::max(y1, hi);
  }
  return {x0, x1, y0, y1};
}

// The band (x, lowest, highest) as a filled outline: along the highest,
// back along the lowest.
template <typename X, typename Y>
std::string BandPolygon(const std::vector<std::array<double, 3>>& band,
                        const char* colour, X px, Y py) {
  std::vector<std::string> outline;
  for (const auto& [x, lo, hi] : band)
    outline.push_back(absl::StrFormat("%.1f,%.1f", px(x), py(hi)));
  for (auto it = band.rbegin(); it != band.rend(); ++it)
    outline.push_back(absl::StrFormat("%.1f,%.1f", px((*it)[0]), py((*it)[1])));
  return absl::StrFormat(
      "<polygon class=\"seed-band\" points=\"%s\" fill=\"%s\" "
      "fill-opacity=\"0.2\" stroke=\"none\"/>",
      absl::StrJoin(outline, " "), colour);
}

}  // namespace

// At most `n` of `points`, evenly spread, the first and last kept.
std::vector<std::pair<double, double>> Thin(
    const std::vector<std::pair<double, double>>& points, size_t n) {
  if (points.size() <= n) return points;
  std::vector<std::pair<double, double>> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(points[i * (points.size() - 1) / (n - 1)]);
  return out;
}

std::string LinePlot(const std::string& id, const std::vector<Series>& series,
                     const std::string& x_label, const std::string& y_label) {
  constexpr double kW = 640, kH = 280, kLeft = 56, kBottom = 36, kTop = 12,
                   kRight = 170;
  const std::array<double, 4> range = RangeOf(series);
  double x0 = range[0], x1 = range[1], y0 = range[2], y1 = range[3];
  std::string svg = absl::StrFormat(
      "<svg class=\"plot\" id=\"%s\" viewBox=\"0 0 %g %g\" width=\"%g\" "
      "height=\"%g\" role=\"img\">",
      id, kW + kRight, kH, kW + kRight, kH);
  if (x0 > x1) {
    return absl::StrCat(svg,
                        "<text x=\"20\" y=\"40\">no points yet</text></svg>");
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  auto px = [&](double x) {
    return kLeft + (x - x0) / (x1 - x0) * (kW - kLeft - 10);
  };
  auto py = [&](double y) {
    return kTop +
           (y1 - std::clamp(y, y0, y1)) / (y1 - y0) * (kH - kTop - kBottom);
  };
  absl::StrAppendFormat(
      &svg,
      "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" class=\"frame\"/>",
      kLeft, kTop, kW - kLeft - 10, kH - kTop - kBottom);
  absl::StrAppendFormat(
      &svg,
      "<text x=\"%g\" y=\"%g\" class=\"tick\">%s</text>"
      "<text x=\"%g\" y=\"%g\" class=\"tick\" text-anchor=\"end\">%s</text>"
      "<text x=\"%g\" y=\"%g\" class=\"tick\" text-anchor=\"end\">%s</text>"
      "<text x=\"%g\" y=\"%g\" class=\"tick\" text-anchor=\"end\">%s</text>"
      "<text x=\"%g\" y=\"%g\" class=\"axis\">%s</text>"
      "<text x=\"12\" y=\"%g\" class=\"axis\">%s</text>",
      kLeft, kH - kBottom + 14, Number(x0), kW - 10, kH - kBottom + 14,
      Number(x1), kLeft - 4, kTop + 10, Number(y1), kLeft - 4, kH - kBottom,
      Number(y0), (kW + kLeft) / 2 - 20, kH - 6, Escape(x_label), kTop - 2,
      Escape(y_label));
  for (size_t i = 0; i < series.size(); ++i) {
    if (!series[i].band.empty())
      absl::StrAppend(&svg, BandPolygon(series[i].band, Colour(i), px, py));
    std::vector<std::string> xy;
    for (const auto& [x, y] : series[i].points)
      xy.push_back(absl::StrFormat("%.1f,%.1f", px(x), py(y)));
    absl::StrAppendFormat(
        &svg,
        "<polyline points=\"%s\" stroke=\"%s\"%s><title>%s</title></polyline>",
        absl::StrJoin(xy, " "), Colour(i),
        series[i].at_edge ? " stroke-dasharray=\"4 3\" class=\"at-edge\"" : "",
        Escape(series[i].at_edge
                   ? absl::StrCat(series[i].name, " (at chance: at the edge)")
                   : series[i].name));
  }
  // The legend: the first 14 members.
  for (size_t i = 0; i < series.size() && i < 14; ++i) {
    const double y = kTop + 8 + double(i) * 18;
    absl::StrAppendFormat(
        &svg,
        "<rect x=\"%g\" y=\"%g\" width=\"12\" height=\"3\" fill=\"%s\"/>"
        "<text x=\"%g\" y=\"%g\" class=\"legend\">%s</text>",
        kW + 4, y - 3, Colour(i), kW + 20, y + 1,
        Escape(absl::StrCat(series[i].name.substr(0, 26),
                            series[i].at_edge ? " (chance, at edge)" : "")));
  }
  if (series.size() > 14) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%g\" y=\"%g\" class=\"legend\">+ %d "
                          "more</text>",
                          kW + 4, kTop + 8 + 14 * 18.0,
                          int(series.size()) - 14);
  }
  return svg + "</svg>";
}

std::vector<Series> SeedBands(const std::vector<Series>& series) {
  std::vector<Series> out;
  std::map<std::string, std::vector<const Series*>> seeds;
  for (const Series& s : series) {
    const std::string member = WithoutSeed(s.name);
    if (member == s.name) {
      out.push_back(s);
      continue;
    }
    if (seeds[member].empty()) out.push_back(Series{member, {}});
    seeds[member].push_back(&s);
  }
  for (Series& s : out) {
    auto group = seeds.find(s.name);
    if (group == seeds.end()) continue;
    std::map<double, std::vector<double>> at;
    bool edge = true;
    for (const Series* seed : group->second) {
      for (const auto& [x, y] : seed->points) at[x].push_back(y);
      edge = edge && seed->at_edge;
    }
    for (const auto& [x, ys] : at) {
      double sum = 0;
      for (double y : ys) sum += y;
      s.points.push_back({x, sum / double(ys.size())});
      s.band.push_back({x, *std::min_element(ys.begin(), ys.end()),
                        *std::max_element(ys.begin(), ys.end())});
    }
    s.name = absl::StrCat(s.name, " (", group->second.size(), " seeds)");
    s.at_edge = edge && !s.points.empty();
    if (s.at_edge) s.band.clear();
  }
  return out;
}

}  // namespace distill
