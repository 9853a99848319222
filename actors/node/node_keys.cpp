// `keys show` and `keys init`: the node's signing key, attestation key and
// anti-replay counter.
#include "actors/node/node_impl.hpp"
#include "runtime/os/env.hpp"
#include "runtime/keys/tpm_key.hpp"

namespace dsmil {

namespace {

keys_reply describe(node_context& ctx) {
  auto& key = ctx.store->key();
  const std::string keys = ctx.store->dir() + "/keys/";
  keys_reply b;
  b.provider = key.provider();
  b.scheme = key.scheme();
  b.key_id = key.key_id();
  b.pem = keys + key.key_id() + ".pem";
  if (key.provider() == "tpm") {
    b.tcti = ctx.cfg.key_tcti;
    b.handle = format_tpm_handle(ctx.cfg.key_handle);
    b.attestation_key_id = key.attestation_key_id();
    b.attestation_pem = keys + key.attestation_key_id() + ".pem";
    auto counter = key.counter();
    if (counter) b.counter = *counter;
  } else {
    b.private_key = keys + "signing.key";
  }
  return b;
}

} // namespace

answer<keys_reply> run(node_context& ctx, actor_calls&, const keys_show_request&) {
  return ok(describe(ctx));
}

answer<keys_reply> run(node_context& ctx, actor_calls&, const keys_init_request&) {
  // The keys were made (idempotently) when the node opened them; init makes
  // sure their public halves are exported where verification looks.
  auto& key = ctx.store->key();
  std::vector<std::pair<std::string, std::string>> pems = {{key.key_id(), key.public_pem()}};
  if (!key.attestation_key_id().empty())
    pems.emplace_back(key.attestation_key_id(), key.attestation_public_pem());
  std::vector<std::string> exported;
  for (auto& [id, pem] : pems) {
    const std::string path = ctx.store->dir() + "/keys/" + id + ".pem";
    if (ctx.os->exists(path)) continue;
    if (auto err = write_durable(*ctx.os, ctx.store->dir() + "/tmp", path, pem, private_file_mode))
      return fail(err);
    exported.push_back(path);
  }
  auto b = describe(ctx);
  b.exported = exported;
  return ok(std::move(b));
}

} // namespace dsmil
