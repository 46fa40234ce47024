// Line plots of the report: overlaid series with a legend, a row at chance
// drawn at the edge, a member's seeds as one line over their band.
#ifndef DISTILL_RENDER_LINE_PLOT_H_
#define DISTILL_RENDER_LINE_PLOT_H_

#include <array>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace distill {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;
  // Drawn dashed at the plot's lower edge, left out of its range (a row
  // at chance would flatten every other curve).
  bool at_edge = false;
  // A member's seeds: (x, lowest, highest) at each x, drawn as a band
  // under the line of their mean.
  std::vector<std::array<double, 3>> band;
};

// At most `n` of `points`, evenly spread, the first and last kept.
std::vector<std::pair<double, double>> Thin(
    const std::vector<std::pair<double, double>>& points, size_t n);

// Overlaid lines with their axes' ranges and a legend (an SVG).
std::string LinePlot(const std::string& id, const std::vector<Series>& series,
                     const std::string& x_label, const std::string& y_label);

// A member's seeds ("H/seed=1", "H/seed=2", ...) as one series: the mean
// at each x with the band of their lowest and highest; other series as
// they are, in first-seen order.
std::vector<Series> SeedBands(const std::vector<Series>& series);

}  // namespace distill

#endif  // DISTILL_RENDER_LINE_PLOT_H_
