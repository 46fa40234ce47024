// Text from the database or from another client (names, notes, tags,
// messages, worker names) on a researcher's terminal: every control
// character made visible, so that nobody can retitle, clear or write the
// clipboard of whoever looks at a run (ESC ] 0 ; ... BEL, ESC [ 2 J,
// OSC 52), forge a line (CR, LF), or reorder what is shown (bidi
// overrides). The CLI passes everything it prints in a table or CSV
// through these; JSON escapes control characters itself.
#ifndef DISTILL_RENDER_TERMINAL_H_
#define DISTILL_RENDER_TERMINAL_H_

#include <google/protobuf/message.h>

#include <string>

#include "absl/strings/string_view.h"

namespace distill {

// `text` with C0 controls and DEL as \n, \r, \t or \xNN; C1 controls
// (U+0080-U+009F) and the bidi embeddings, overrides and isolates
// (U+202A-U+202E, U+2066-U+2069) as \uNNNN; bytes that are not UTF-8 as
// \xNN. Printable text, other languages' too, is left as it is.
std::string TerminalSafe(absl::string_view text);

// Every string field of `message`, nested, repeated and in maps (keys
// too), made TerminalSafe.
void MakeTerminalSafe(google::protobuf::Message* message);

// A copy of `message`, made TerminalSafe.
template <typename Message>
Message TerminalSafeCopy(const Message& message) {
  Message copy = message;
  MakeTerminalSafe(&copy);
  return copy;
}

}  // namespace distill

#endif  // DISTILL_RENDER_TERMINAL_H_
