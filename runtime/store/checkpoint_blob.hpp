// One checkpoint as one blob, for export and import (storage::compress_checkpoint
// and friends).
//
// blob    := "DSMB" u8 version(1) u8 codec u8 cipher u8 0 u64 plain_len u64 crc64(payload)
//            payload
// payload := plain, DEFLATE(plain) when codec = 1, then AES-256-GCM sealed
//            (first 16 header bytes as associated data) when cipher = 1
// plain   := section*;  section := u8 kind u32 name_len name u64 size bytes
// kinds: 1 metadata (JSON), 2 device (state_codec), 3 configuration, 4 stream
#pragma once

#include <string>
#include <string_view>

#include "dsmil/result.hpp"
#include "dsmil/storage.hpp"

namespace dsmil {

struct store_keys;

/// Encodes `c`: compressed when that makes it smaller, sealed with `keys`
/// when given.
std::string encode_checkpoint_blob(const checkpoint& c, const store_keys* keys);
/// Decodes a blob, checking magic, lengths, CRC64 and (sealed) the GCM tag.
/// A sealed blob needs `keys`: without them the error says so.
result<checkpoint> decode_checkpoint_blob(std::string_view blob, const store_keys* keys);

} // namespace dsmil
