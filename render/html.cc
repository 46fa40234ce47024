#include "render/html.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace distill {
namespace {

// The data set's classes: Fashion-MNIST's names, else "class N".
std::vector<std::string> ClassNames(const std::string& data) {
  if (data == "fashion-mnist") {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  }
  return {};
}

}  // namespace

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

const char* Colour(size_t i) {
  static const char* const kColours[] = {
      "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
      "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  return kColours[i % 10];
}

std::string HtmlClassLegend(const std::string& dataset, int classes) {
  const std::vector<std::string> names = ClassNames(dataset);
  std::string html = "<p class=\"legend\" id=\"tsne-legend\">";
  for (int c = 0; c < classes && c < 20; ++c) {
    absl::StrAppendFormat(
        &html,
        "<span class=\"class\"><svg width=\"10\" height=\"10\"><circle "
        "cx=\"5\" cy=\"5\" r=\"4\" fill=\"%s\"/></svg> %s</span> ",
        Colour(size_t(c)),
        Escape(size_t(c) < names.size() ? names[size_t(c)]
                                        : absl::StrCat("class ", c)));
  }
  if (classes > 20)
    absl::StrAppend(&html, "(and ", classes - 20, " more; colours repeat)");
  return html + "</p>";
}

}  // namespace distill
