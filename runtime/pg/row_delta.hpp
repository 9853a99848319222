// The rows that differ between two versions of a table's stream (text COPY
// lines in key order, cut by the same chunker), found from their chunk
// lists: only the chunks the lists do not share are read, with one shared
// chunk on each side to reach whole rows. What a restore applies instead of
// the whole table when it knows the table holds one of the two versions.
#pragma once

#include <optional>
#include <string>

#include "dsmil/result.hpp"
#include "runtime/store/stream_types.hpp"

namespace dsmil {

class stream_port;

struct row_delta {
  std::string old_rows; ///< lines of `from` that `to` does not have, in order
  std::string new_rows; ///< lines of `to` that `from` does not have, in order
  uint64_t old_count = 0, new_count = 0;
  uint64_t windows = 0;    ///< runs of chunks that differ
  uint64_t read_bytes = 0; ///< bytes read from the store to find them
};

/// The delta from the rows of `from` to those of `to`. nullopt when it
/// cannot be found from the lists within bounds: the chunks to read (held
/// in memory) come to more than `max_read` bytes, or a row is longer than
/// a shared chunk next to a difference (no line end in it). Errors: reading
/// the store.
result<std::optional<row_delta>> rows_between(stream_port& port, const stream_ref& from,
                                              const stream_ref& to,
                                              uint64_t max_read = uint64_t{64} << 20);

} // namespace dsmil
