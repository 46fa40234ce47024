// A run's t-SNE maps (its tsne.csv: "model,x,y,label" a test image, after a
// header line), read once for the terminal plot and the HTML report.
#ifndef DISTILL_RENDER_TSNE_H_
#define DISTILL_RENDER_TSNE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace distill {

struct TsnePoint {
  double x = 0, y = 0;
  int label = 0;
};

// One model's map ("teacher", "student"), its points in file order.
struct TsneMap {
  std::string model;
  std::vector<TsnePoint> points;
};

// The maps of a tsne.csv, by model in file order; INVALID_ARGUMENT naming
// the first line that is not model,x,y,label (the line made terminal-safe).
absl::StatusOr<std::vector<TsneMap>> ParseTsne(const std::string& csv);

// A character scatter plot of each model's map in `csv`, one class digit
// per cell (the commonest there), `width` x `height` cells; for a malformed
// file, the parse error as the plot's one line.
std::string TsnePlot(const std::string& csv, int width = 64, int height = 22);

}  // namespace distill

#endif  // DISTILL_RENDER_TSNE_H_
