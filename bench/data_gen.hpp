// Deterministic test data for the benchmarks: random, compressible mixed
// text/binary, and database-like rows; and scattered edits of it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dsmil/result.hpp"
#include "runtime/store/store.hpp"

namespace dsmil::bench {

enum class data_kind { random, mixed, rows };

/// Writes `size` bytes of `kind` to `path`, from `seed`.
status generate(const std::string& path, uint64_t size, data_kind kind, uint64_t seed);

/// Copies `from` to `to` with `fraction` of its bytes changed in scattered
/// 64 KiB regions, alternating overwrites and insertions (random bytes).
/// Returns the number of bytes changed; `edits` (when given) gets the edits
/// as a component with dirty tracking would report them.
result<uint64_t> edit_scattered(const std::string& from, const std::string& to, double fraction,
                                uint64_t seed, std::vector<stream_edit>* edits = nullptr);

} // namespace dsmil::bench
