#include "render/terminal.h"

#include <google/protobuf/descriptor.h>

#include <cstdint>

#include "absl/strings/str_format.h"

namespace distill {
namespace {

// The length of the UTF-8 sequence at `text[i]` and its code point, or 0
// when the bytes there are not one (overlong, surrogate, past U+10FFFF,
// cut short).
size_t DecodeUtf8(absl::string_view text, size_t i, uint32_t* code_point) {
  const auto byte = [&](size_t k) { return uint8_t(text[i + k]); };
  const uint8_t lead = byte(0);
  size_t length;
  uint32_t value;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    value = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    value = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    value = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(k) & 0xC0) != 0x80) return 0;
    value = (value << 6) | (byte(k) & 0x3F);
  }
  if ((length == 3 && value < 0x800) || (length == 4 && value < 0x10000) ||
      (value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) {
    return 0;
  }
  *code_point = value;
  return length;
}

bool IsHiddenControl(uint32_t c) {
  return (c >= 0x80 && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069);
}

}  // namespace

std::string TerminalSafe(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const uint8_t b = uint8_t(text[i]);
    if (b < 0x80) {
      if (b >= 0x20 && b != 0x7F) {
        out += char(b);
      } else if (b == '\n') {
        out += "\\n";
      } else if (b == '\r') {
        out += "\\r";
      } else if (b == '\t') {
        out += "\\t";
      } else {
        out += absl::StrFormat("\\x%02x", b);
      }
      ++i;
      continue;
    }
    uint32_t c = 0;
    const size_t length = DecodeUtf8(text, i, &c);
    if (length == 0) {
      out += absl::StrFormat("\\x%02x", b);
      ++i;
    } else if (IsHiddenControl(c)) {
      out += absl::StrFormat("\\u%04x", c);
      i += length;
    } else {
      out.append(text.data() + i, length);
      i += length;
    }
  }
  return out;
}

void MakeTerminalSafe(google::protobuf::Message* message) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Descriptor* d = message->GetDescriptor();
  const google::protobuf::Reflection* r = message->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* field = d->field(i);
    if (field->type() == FieldDescriptor::TYPE_STRING) {
      if (field->is_repeated()) {
        for (int k = 0; k < r->FieldSize(*message, field); ++k) {
          r->SetRepeatedString(
              message, field, k,
              TerminalSafe(r->GetRepeatedString(*message, field, k)));
        }
      } else if (r->HasField(*message, field)) {
        r->SetString(message, field,
                     TerminalSafe(r->GetString(*message, field)));
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      // Map entries are repeated messages to reflection: keys and values
      // are made safe like any other field.
      if (field->is_repeated()) {
        for (int k = 0; k < r->FieldSize(*message, field); ++k)
          MakeTerminalSafe(r->MutableRepeatedMessage(message, field, k));
      } else if (r->HasField(*message, field)) {
        MakeTerminalSafe(r->MutableMessage(message, field));
      }
    }
  }
}

}  // namespace distill
