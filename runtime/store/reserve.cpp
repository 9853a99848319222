#include "runtime/store/reserve.hpp"

#include <algorithm>

#include "runtime/os/env.hpp"

namespace dsmil {

namespace {

constexpr uint64_t journal_bytes = 64 * 1024; // a saga's journal, with room to spare
constexpr uint64_t min_reserve = 64 * 1024;

} // namespace

status space_reserve::hold(uint64_t bytes) {
  wanted_ = bytes;
  if (bytes == held_) return {};
  // Growing (a checkpoint added more than any before): only the difference
  // is written, not the whole file again.
  const uint64_t from = bytes > held_ && held_ > 0 && env_.exists(path_) ? held_.load() : 0;
  if (from == 0)
    if (auto err = release()) return err;
  if (bytes == 0) return {};
  auto f = from > 0 ? env_.new_appendable_file(path_, 0600) : env_.new_writable_file(path_, 0600);
  if (!f) return f.err();
  const std::string zeros(std::min<uint64_t>(bytes - from, 1u << 20), '\0');
  status err;
  for (uint64_t left = bytes - from; left > 0 && !err;) {
    const auto n = std::min<uint64_t>(left, zeros.size());
    err = (*f)->append(std::string_view(zeros.data(), n));
    left -= n;
  }
  if (!err) err = (*f)->sync();
  if (!err) err = (*f)->close();
  if (!err && from == 0) err = env_.sync_dir(parent_dir(path_));
  if (err) {
    (*f)->close();
    // A reserve that cannot grow (the disk is filling) keeps what it held:
    // dropping it would free its space exactly when a rollback needs it.
    if (from > 0 && !keep_first(from)) {
      held_ = from;
      return err;
    }
    env_.remove(path_);
    held_ = 0;
    return err;
  }
  held_ = bytes;
  return {};
}

status space_reserve::keep_first(uint64_t bytes) {
  auto f = env_.open_random_rw_file(path_, 0600);
  if (!f) return f.err();
  status err = (*f)->truncate(bytes);
  if (!err) err = (*f)->sync();
  return err;
}

status space_reserve::release() {
  if (held_ == 0 && !env_.exists(path_)) return {};
  if (auto err = env_.remove(path_)) return err;
  held_ = 0;
  return {};
}

uint64_t automatic_reserve_bytes(uint64_t newest_new_bytes, uint64_t safety_net,
                                 uint64_t fs_bytes) {
  const uint64_t want = std::max({min_reserve, 2 * newest_new_bytes + journal_bytes, safety_net});
  return std::min(want, std::max<uint64_t>(fs_bytes / 20, 4096));
}

uint64_t rollback_safety_net_bytes(size_t devices, uint64_t state_bytes) {
  // Per device: its record (header and state), its index line and its
  // manifest entry; then the manifest's fixed part, signature, pack header.
  return state_bytes + devices * (64 + 90 + 120) + 16 * 1024 + journal_bytes;
}

} // namespace dsmil
