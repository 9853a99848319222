// checkpoint_store::remove: deleting a checkpoint, and the signed head record that keeps
// anti-replay true when the newest goes.
#include "runtime/store/layout.hpp"
#include "runtime/store/store.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>
#include <sstream>

#include "runtime/store/state_codec.hpp"
#include "runtime/config/toml_util.hpp"

namespace dsmil {

status checkpoint_store::remove(const std::string& id) {
  std::lock_guard<std::recursive_mutex> change(change_mu_);
  std::shared_lock<std::shared_mutex> files(files_mu_);
  if (auto err = check_writable("deletes")) return err;
  auto it = checkpoints_.find(id);
  if (it == checkpoints_.end()) return make_error(errc::not_found, "no checkpoint '" + id + "'");
  if (it->second.pinned)
    return make_error(errc::permission_denied,
                      "checkpoint " + id + " is pinned; unpin it first ('checkpoint unpin')");
  if (id == checkpoints_.rbegin()->first && it->second.counter > 0 &&
      it->second.ak_key_id == key_->attestation_key_id()) {
    // The newest goes: a signed head record names the next one with a fresh
    // counter value, so that it is not taken for an old checkpoint replayed.
    if (auto err = write_head_record(id)) return err;
  }
  // The manifest goes first: without it the checkpoint no longer exists, and
  // a signature left behind by a crash is swept at the next open.
  for (const auto& rel : {layout::manifest(id), layout::signature(id), layout::pin(id)}) {
    if (auto err = remove_durable(env_, layout::path(dir_, rel))) {
      return record_background_error(err);
    }
  }
  {
    std::unique_lock<std::shared_mutex> catalog(catalog_mu_);
    checkpoints_.erase(id);
  }
  return {};
}

status checkpoint_store::write_head_record(const std::string& removed) {
  std::string next;
  for (auto it = checkpoints_.rbegin(); it != checkpoints_.rend(); ++it)
    if (it->first != removed) {
      next = it->first;
      break;
    }
  auto counter = key_->advance_counter();
  if (!counter) return counter.err();
  const std::string body = nlohmann::json{{"head", next},
                                          {"counter", *counter},
                                          {"ak_key_id", key_->attestation_key_id()}}
                               .dump(2) +
                           "\n";
  const digest d = sha256(body);
  auto sig = key_->sign_digest(d);
  if (!sig) return sig.err();
  signature_file sf{key_->scheme(), key_->provider(), key_->key_id(), to_hex(d),
                    to_hex(reinterpret_cast<const uint8_t*>(sig->data()), sig->size())};
  if (auto err = write(layout::path(dir_, layout::head_sig), encode_signature(sf))) return err;
  return write(layout::path(dir_, layout::head), body);
}

} // namespace dsmil
