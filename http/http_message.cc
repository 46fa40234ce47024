#include "http/http_message.h"

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace distill {
namespace {

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(c) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) !=
             absl::string_view::npos;
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// `in` with %XX escapes decoded (and '+' as a space for form fields);
// false on a bad escape or a NUL.
bool PercentDecode(absl::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = char(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return false;
    out->push_back(c);
  }
  return true;
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 303:
      return "See Other";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

HttpParse Bad(int status, std::string why, bool head_complete) {
  HttpParse p;
  p.state = HttpParse::kBad;
  p.head_complete = head_complete;
  p.error_status = status;
  p.error = std::move(why);
  return p;
}

absl::string_view StripBlanks(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::string HttpRequest::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "";
}

namespace {

// The request line: METHOD SP TARGET SP VERSION, into `request`; the
// error's answer otherwise.
std::optional<HttpParse> ParseRequestLine(absl::string_view line,
                                          HttpRequest* request) {
  const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || !IsToken(parts[0]) || parts[1].empty()) {
    return Bad(400, "the request line is not METHOD TARGET HTTP/1.1", true);
  }
  request->method = std::string(parts[0]);
  request->target = std::string(parts[1]);
  if (parts[2] == "HTTP/1.0") {
    request->http10 = true;
  } else if (parts[2] != "HTTP/1.1") {
    return absl::StartsWith(parts[2], "HTTP/")
               ? Bad(505, "only HTTP/1.1 and HTTP/1.0 are served", true)
               : Bad(400, "the request line is not METHOD TARGET HTTP/1.1",
                     true);
  }
  if (request->method != "GET" && request->method != "HEAD" &&
      request->method != "POST") {
    return Bad(501, "only GET, HEAD and POST are served", true);
  }
  if (request->target.front() != '/') {
    return Bad(400, "the target must be a path (origin form)", true);
  }
  for (unsigned char c : request->target) {
    if (c <= 0x20 || c >= 0x7f)
      return Bad(400, "the target holds a byte that must be escaped", true);
  }
  absl::string_view target = request->target;
  if (const size_t question = target.find('?');
      question != absl::string_view::npos) {
    request->query = std::string(target.substr(question + 1));
    target = target.substr(0, question);
  }
  if (!PercentDecode(target, /*plus_is_space=*/false, &request->path)) {
    return Bad(400, "the target's path is badly %-escaped", true);
  }
  return std::nullopt;
}

// The headers (NAME ":" VALUE, no folding, no chunked bodies, one
// Content-Length) into `request`, the body's length into `*body_bytes`;
// the error's answer otherwise.
std::optional<HttpParse> ParseHeaders(
    const std::vector<absl::string_view>& lines, const HttpLimits& limits,
    HttpRequest* request, uint64_t* body_bytes) {
  if (lines.size() - 1 > limits.max_headers) {
    return Bad(431, absl::StrCat("more than ", limits.max_headers, " headers"),
               true);
  }
  std::optional<std::string> content_length;
  for (size_t i = 1; i < lines.size(); ++i) {
    const absl::string_view line = lines[i];
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || !IsToken(line.substr(0, colon)))
      return Bad(400, "a header is not NAME: VALUE", true);
    const absl::string_view value = StripBlanks(line.substr(colon + 1));
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f)
        return Bad(400, "a header's value holds a control character", true);
    }
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    if (name == "transfer-encoding") {
      return Bad(501, "bodies in chunks are not taken; send Content-Length",
                 true);
    }
    if (name == "content-length") {
      // An empty one is no number (not 0), and cannot be overridden.
      if (content_length.has_value() && *content_length != value)
        return Bad(400, "two different Content-Length headers", true);
      content_length = std::string(value);
    }
    request->headers.emplace_back(std::move(name), std::string(value));
  }
  if (!request->http10 && request->Header("host").empty())
    return Bad(400, "an HTTP/1.1 request needs a Host header", true);
  *body_bytes = 0;
  if (!content_length.has_value()) return std::nullopt;
  const bool digits =
      !content_length->empty() && content_length->size() <= 18 &&
      std::all_of(content_length->begin(), content_length->end(),
                  [](char c) { return absl::ascii_isdigit(c); });
  if (!digits || !absl::SimpleAtoi(*content_length, body_bytes))
    return Bad(400, "Content-Length is not a number", true);
  if (*body_bytes > limits.max_body_bytes) {
    return Bad(413,
               absl::StrCat("the body is longer than ", limits.max_body_bytes,
                            " bytes"),
               true);
  }
  return std::nullopt;
}

}  // namespace

HttpParse ParseHttpRequest(absl::string_view data, const HttpLimits& limits,
                           HttpRequest* request) {
  const size_t head_end = data.find("\r\n\r\n");
  if (head_end == absl::string_view::npos ||
      head_end + 4 > limits.max_head_bytes) {
    if (data.size() > limits.max_head_bytes ||
        head_end != absl::string_view::npos) {
      return Bad(431,
                 absl::StrCat("the request's line and headers are longer than ",
                              limits.max_head_bytes, " bytes"),
                 false);
    }
    return HttpParse();  // Incomplete.
  }
  const std::vector<absl::string_view> lines =
      absl::StrSplit(data.substr(0, head_end), "\r\n");
  *request = HttpRequest();
  if (std::optional<HttpParse> bad = ParseRequestLine(lines[0], request))
    return *bad;
  uint64_t body_bytes = 0;
  if (std::optional<HttpParse> bad =
          ParseHeaders(lines, limits, request, &body_bytes)) {
    return *bad;
  }
  HttpParse result;
  result.head_complete = true;
  const size_t body_start = head_end + 4;
  if (data.size() - body_start < body_bytes) return result;  // Incomplete.
  request->body = std::string(data.substr(body_start, body_bytes));
  result.state = HttpParse::kComplete;
  result.consumed = body_start + body_bytes;
  return result;
}

std::string FormValue(absl::string_view form, absl::string_view name) {
  for (absl::string_view pair : absl::StrSplit(form, '&')) {
    const size_t eq = pair.find('=');
    std::string key;
    if (!PercentDecode(pair.substr(0, eq), true, &key) || key != name) continue;
    std::string value;
    if (eq == absl::string_view::npos ||
        !PercentDecode(pair.substr(eq + 1), true, &value)) {
      return "";
    }
    return value;
  }
  return "";
}

bool IsHeaderValue(absl::string_view value) {
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

std::string SerializeHttpResponse(const HttpResponse& given, bool keep_alive,
                                  bool head) {
  // A header that would end early (CR or LF: response splitting) or is
  // not NAME: VALUE: the whole answer becomes a 500, nothing of it sent.
  bool sound = IsHeaderValue(given.content_type);
  for (const auto& [name, value] : given.headers)
    sound = sound && IsToken(name) && IsHeaderValue(value);
  HttpResponse refused;
  if (!sound) {
    refused.status = 500;
    refused.content_type = "text/plain; charset=utf-8";
    refused.body =
        "internal error: a response header held a control character\n";
  }
  const HttpResponse& response = sound ? given : refused;
  std::string out = absl::StrCat(
      "HTTP/1.1 ", response.status, " ", Reason(response.status),
      "\r\nContent-Type: ", response.content_type,
      "\r\nContent-Length: ", response.body.size(),
      "\r\nConnection: ", keep_alive ? "keep-alive" : "close", "\r\n");
  for (const auto& [name, value] : response.headers)
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  absl::StrAppend(&out, "\r\n");
  if (!head) absl::StrAppend(&out, response.body);
  return out;
}

}  // namespace distill
