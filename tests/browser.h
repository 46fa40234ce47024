// Checks of HTML pages: counting what a page holds, and loading it in a
// real browser (Debian's headless Chromium) when one is installed.
#ifndef DISTILL_TESTS_BROWSER_H_
#define DISTILL_TESTS_BROWSER_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace distill {

inline int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + 1))
    ++n;
  return n;
}

inline constexpr char kChromium[] = "/usr/bin/chromium";

inline bool HaveBrowser() { return std::filesystem::exists(kChromium); }

// What the browser made of `url` (with Chromium's `flags`): the DOM it
// built, and its log (console messages land there as "CONSOLE(...)");
// nullopt when it failed to run.
struct Loaded {
  std::string dom;
  std::string log;
};
inline std::optional<Loaded> LoadInBrowser(const std::string& url,
                                           const std::filesystem::path& dir,
                                           const std::string& flags = "") {
  const std::string dom = (dir / "dom.html").string();
  const std::string log = (dir / "browser.log").string();
  const std::string command = absl::StrCat(
      kChromium, " --headless --no-sandbox --disable-gpu --no-first-run ",
      "--user-data-dir=", (dir / "browser-profile").string(),
      " --enable-logging=stderr --v=0 ", flags, " --dump-dom '", url, "' >",
      dom, " 2>", log);
  if (std::system(command.c_str()) != 0) return std::nullopt;
  std::stringstream d, l;
  d << std::ifstream(dom).rdbuf();
  l << std::ifstream(log).rdbuf();
  return Loaded{d.str(), l.str()};
}

}  // namespace distill

#endif  // DISTILL_TESTS_BROWSER_H_
