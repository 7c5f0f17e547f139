// libFuzzer target for the event log's decoders: the message encoding, record framing, sparse
// index files and segment headers, i.e. everything read back from disk. The first input byte
// picks the decoder; the rest is the bytes. Whatever decodes must re-encode to something that
// decodes to the same value (a round-trip property), and nothing may read out of bounds or
// crash.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "eventlog/format.h"
#include "eventlog/message.h"

namespace el = orrery::eventlog;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto m = el::Decode(in);
      if (!m) return 0;
      if (!el::CheckMessageLimits(*m)) std::abort();  // the decoder enforces the same bounds
      auto again = el::Decode(el::Encode(*m));
      if (!again || !(*again == *m)) std::abort();
      break;
    }
    case 1: {
      el::format::RecordHeader header;
      std::string_view body;
      if (el::format::CheckRecord(in, &header, &body) != el::format::RecordStatus::kOk) return 0;
      if (body.size() != header.length || body.data() != in.data() + 24) std::abort();
      (void)el::Decode(body);
      break;
    }
    case 2: {
      auto index = el::format::DecodeIndex(in);
      if (!index) return 0;
      // No slack in the format: a valid index re-encodes to the very same bytes.
      if (el::format::EncodeIndex(*index) != in) std::abort();
      break;
    }
    default: {
      auto header = el::format::DecodeSegmentHeader(in);
      if (!header) return 0;
      auto again = el::format::DecodeSegmentHeader(el::format::EncodeSegmentHeader(*header));
      if (!again || !(*again == *header)) std::abort();
      break;
    }
  }
  return 0;
}
