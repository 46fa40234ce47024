// Pieces of the HTML pages and report: escaping, the plots' colours, a
// class legend.
#ifndef DISTILL_RENDER_HTML_H_
#define DISTILL_RENDER_HTML_H_

#include <cstddef>
#include <string>

namespace distill {

// Text safe inside HTML elements and attribute values.
std::string Escape(const std::string& s);

// Tableau's ten colours, then again: series i and class i.
const char* Colour(size_t i);

// The colour of each of `classes` classes as the t-SNE maps draw them,
// named (Fashion-MNIST's names; "class N" otherwise); at most 20.
std::string HtmlClassLegend(const std::string& dataset, int classes);

}  // namespace distill

#endif  // DISTILL_RENDER_HTML_H_
