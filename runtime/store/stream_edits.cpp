// write_stream_changes: an incremental stream from a parent's chunk list and
// the edits a component knows of; only the bytes around each edit are read.
#include "runtime/store/stream_pipeline.hpp"

namespace dsmil {

using namespace stream_detail;

result<stream_ref> checkpoint_store::write_stream_changes(const std::string& name,
                                                          const stream_ref& parent,
                                                          const std::vector<stream_edit>& edits,
                                                          const byte_reader& read,
                                                          stream_stats* stats) {
  auto refs = write_streams({stream_write{name, {}, &parent, edits, read}}, stats);
  if (!refs) return refs.err();
  return std::move(refs->front());
}

status checkpoint_store::feed_changes(stream_pipeline& pipe, const stream_write& w) {
  const stream_ref& parent = *w.parent;
  const auto& edits = w.edits;
  const auto& read = w.read;
  const auto& name = w.name;
  // The edits must describe a stream: sorted, disjoint, inside the parent.
  uint64_t new_size = parent.size, prev_end = 0;
  for (size_t k = 0; k < edits.size(); ++k) {
    const auto& e = edits[k];
    if (e.offset > parent.size || e.old_length > parent.size - e.offset)
      return make_error(errc::invalid_argument,
                        "edit " + std::to_string(k) + " (offset " + std::to_string(e.offset) +
                            ", " + std::to_string(e.old_length) +
                            " bytes) reaches past the end of the stored stream (" +
                            std::to_string(parent.size) + " bytes)");
    if (k > 0 && e.offset < prev_end)
      return make_error(errc::invalid_argument,
                        "edit " + std::to_string(k) + " (offset " + std::to_string(e.offset) +
                            ") overlaps or precedes edit " + std::to_string(k - 1) +
                            " (which ends at " + std::to_string(prev_end) +
                            "); sort the edits by offset and merge overlapping ones");
    prev_end = e.offset + e.old_length;
    new_size = new_size - e.old_length + e.new_length;
  }
  // Where the parent's chunks start (and the stream's end).
  std::vector<uint64_t> starts{0};
  for (auto& c : parent.chunks)
    starts.push_back(starts.back() + c.size);
  if (starts.back() != parent.size)
    return make_error(errc::invalid_argument,
                      "stream '" + parent.name + "': its chunks do not add up to its size");
  const size_t n = parent.chunks.size();

  const chunker cut(w.chunking.value_or(opts_.chunking));
  const size_t max = cut.params().max_size;
  std::vector<uint8_t> buf(std::max<size_t>(4 * max, batch_target));
  size_t i = 0;      // the parent's next chunk
  size_t e = 0;      // the first edit not yet behind the cut
  int64_t delta = 0; // new offset - old offset after the edits before e
  bool done = false;
  while (!done && !pipe.failed()) {
    // The parent's chunks before the next edit are the new stream's too. A
    // cut depends only on the chunk's own bytes, except at the end of the
    // stream: the parent's last chunk is reused only when nothing follows it.
    const uint64_t next_edit = e < edits.size() ? edits[e].offset : UINT64_MAX;
    while (i < n && starts[i + 1] <= next_edit && !(i + 1 == n && e < edits.size())) {
      if (auto err = pipe.reuse(parent.chunks[i])) {
        pipe.fail(err);
        break;
      }
      ++i;
    }
    if (pipe.failed() || (i == n && e == edits.size())) break;

    // Cut the new stream from where the parent's chunk i starts until a cut
    // falls on one of the parent's chunk starts past the edits: from there
    // on the chunking is the parent's again.
    uint64_t base = static_cast<uint64_t>(static_cast<int64_t>(starts[i]) + delta);
    size_t begin = 0, end = 0;
    for (;;) {
      const bool eof = base + end == new_size;
      if (!eof && end - begin < max) {
        if (begin > 0) {
          std::copy(buf.begin() + static_cast<long>(begin), buf.begin() + static_cast<long>(end),
                    buf.begin());
          base += begin;
          end -= begin;
          begin = 0;
        }
        // Read no further ahead than a cut needs: the rest is the parent's.
        const size_t want = static_cast<size_t>(
            std::min<uint64_t>({buf.size() - end, max, new_size - (base + end)}));
        auto got = read(base + end, buf.data() + end, want);
        if (!got) {
          pipe.fail(got.err());
          break;
        }
        if (*got == 0 || *got > want) {
          pipe.fail(make_error(errc::invalid_argument,
                               "stream '" + name +
                                   "' does not match the stored stream with the "
                                   "edits applied (" +
                                   std::to_string(new_size) + " bytes): " +
                                   (*got == 0 ? "it ends at " + std::to_string(base + end)
                                              : std::string("it is longer")) +
                                   "; check the edit list"));
          break;
        }
        end += *got;
        continue;
      }
      if (begin == end) {
        done = true;
        break;
      }
      const size_t len = cut.next_cut(buf.data() + begin, end - begin, eof);
      if (len == 0) continue;
      pipe.add(buf.data() + begin, len);
      begin += len;
      const uint64_t at = base + begin; // the cut, in the new stream
      while (e < edits.size() &&
             at >= static_cast<uint64_t>(static_cast<int64_t>(edits[e].offset) + delta) +
                       edits[e].new_length) {
        delta +=
            static_cast<int64_t>(edits[e].new_length) - static_cast<int64_t>(edits[e].old_length);
        ++e;
      }
      if (at == new_size) {
        done = true;
        break;
      }
      // In step with the parent again? Only outside the edits' new bytes.
      if (e < edits.size() &&
          at > static_cast<uint64_t>(static_cast<int64_t>(edits[e].offset) + delta))
        continue;
      const uint64_t old_at = static_cast<uint64_t>(static_cast<int64_t>(at) - delta);
      auto it = std::lower_bound(starts.begin() + static_cast<long>(i), starts.end() - 1, old_at);
      if (it != starts.end() - 1 && *it == old_at) {
        i = static_cast<size_t>(it - starts.begin());
        break;
      }
    }
  }
  return {};
}

} // namespace dsmil
