// What a stream is to the store and to those who hand it bytes: a chunk list
// (stream_ref), and the callables that move a stream's bytes in and out.
// Small on purpose: components include it without the store.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dsmil/result.hpp"

namespace dsmil {

struct chunk_ref {
  std::string id; ///< hex SHA-256 of the plaintext (HMAC-SHA-256 when encrypted)
  uint64_t size = 0;
};

/// Fills `buf` with up to `cap` bytes; 0 at the end of the stream.
using byte_source = std::function<result<size_t>(uint8_t* buf, size_t cap)>;
/// Reads up to `len` bytes at `offset` of a stream into `buf`; fewer only at
/// its end.
using byte_reader = std::function<result<size_t>(uint64_t offset, uint8_t* buf, size_t len)>;
/// Takes the bytes of a stream in order, one call at a time.
using byte_sink = std::function<status(std::string_view bytes)>;

/// A stream component of a checkpoint: any byte stream (a database table,
/// an agent's execution context), cut into content-defined chunks.
struct stream_ref {
  std::string name;
  uint64_t size = 0;
  std::vector<chunk_ref> chunks;
};

/// Whether two streams hold the same bytes, by their chunk lists (the same
/// chunks in the same order; names aside). Streams cut with different chunk
/// sizes may hold the same bytes and still differ here.
inline bool same_chunks(const stream_ref& a, const stream_ref& b) {
  if (a.size != b.size || a.chunks.size() != b.chunks.size()) return false;
  for (size_t i = 0; i < a.chunks.size(); ++i)
    if (a.chunks[i].id != b.chunks[i].id) return false;
  return true;
}

} // namespace dsmil
