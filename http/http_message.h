// HTTP/1.1 requests and responses as the pages' server reads and writes
// them: a strict parser of one request at a time (bounded head and body,
// no folded headers, no chunked bodies, one Content-Length), the form
// fields of a login, and a response's bytes. Pure functions: the pages'
// fuzzer drives them.
#ifndef DISTILL_HTTP_HTTP_MESSAGE_H_
#define DISTILL_HTTP_HTTP_MESSAGE_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace distill {

struct HttpRequest {
  std::string method;  // "GET", "HEAD" or "POST".
  std::string target;  // As sent: "/sweeps/my%20sweep?x=1".
  std::string path;   // The target's path, percent-decoded: "/sweeps/my sweep".
  std::string query;  // After "?", as sent.
  bool http10 = false;
  // Names in lower case, values without surrounding blanks, in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string peer;  // The client's address, without its port.
  bool tls = false;  // Whether it came over TLS.

  // The value of the first header of that (lower-case) name, or "".
  std::string Header(absl::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";
  // Sent as they are, after Content-Type, Content-Length and Connection.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpLimits {
  size_t max_head_bytes = 16 << 10;  // Request line and headers.
  size_t max_headers = 64;
  size_t max_body_bytes = 64 << 10;
};

// One request parsed from the start of what a connection has sent.
struct HttpParse {
  enum State { kIncomplete, kComplete, kBad } state = kIncomplete;
  bool head_complete =
      false;             // The headers are in (kIncomplete: the body is not).
  size_t consumed = 0;   // kComplete: the request's bytes.
  int error_status = 0;  // kBad: 400, 413, 431, 501 or 505.
  std::string error;     // kBad: why, for the response's body.
};

// Parses the request at the start of `data` into `request` (its method,
// target, path, query, version, headers and body). Pure: the pages' fuzzer
// drives it.
HttpParse ParseHttpRequest(absl::string_view data, const HttpLimits& limits,
                           HttpRequest* request);

// "a=1&token=x+y%21" -> the value of `name` ("x y!" for token), decoded as
// an HTML form's fields are; "" when absent or badly encoded.
std::string FormValue(absl::string_view form, absl::string_view name);

// The response's bytes: status line, headers, body (none for HEAD). A
// header whose name is not a token or whose value holds a control
// character (CR and LF above all: they would end the header and start
// another, or the body) is never sent: the answer is then a 500 whose
// headers are the serializer's own.
std::string SerializeHttpResponse(const HttpResponse& response, bool keep_alive,
                                  bool head);

// Whether `value` may be sent as a header's value: no control character
// but tab.
bool IsHeaderValue(absl::string_view value);

}  // namespace distill

#endif  // DISTILL_HTTP_HTTP_MESSAGE_H_
