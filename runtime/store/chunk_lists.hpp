// A large stream's chunk list kept in the store as chunks of its own, so a
// manifest names a few list chunks instead of tens of thousands of data
// chunks (manifest format 2). The list is a base (the whole list, cut where
// a chunk id says so, so that unchanged runs of a list cut the same) plus an
// edit script against the base: a checkpoint whose stream differs from the
// base's in a thousand places adds a script of about a thousand entries, not
// a new list. The script is always against the base, never against another
// script, so reading a list needs its base and one script: no chains.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dsmil/result.hpp"
#include "runtime/store/stream_types.hpp"

namespace dsmil {

/// Streams with at least this many chunks get their list stored chunked.
constexpr size_t listed_stream_min_chunks = 256;

/// Encoded bytes of a whole list (36 bytes an entry: raw id, size), cut into
/// pieces of 16-1024 entries, ending after an entry whose id ends in a zero
/// byte (content-defined: pieces away from an edit keep their bytes).
std::vector<std::string> encode_list_pieces(const std::vector<chunk_ref>& list);
/// The list back from its pieces' bytes, concatenated.
result<std::vector<chunk_ref>> decode_list(std::string_view bytes);

/// An edit script turning `base` into `target`: runs copied from the base,
/// entries written out. `literals` gets the number of entries written out.
std::string diff_lists(const std::vector<chunk_ref>& base, const std::vector<chunk_ref>& target,
                       size_t* literals);
/// Applies `script` (its pieces' bytes, concatenated) to `base`.
result<std::vector<chunk_ref>> apply_list_script(const std::vector<chunk_ref>& base,
                                                 std::string_view script);
/// `bytes` cut into pieces of at most 32 KiB (a script is read whole; the
/// cut only bounds the size of a chunk).
std::vector<std::string> cut_pieces(const std::string& bytes);

} // namespace dsmil
