// Node commands that create, list, show, verify and delete checkpoints.
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/node_impl.hpp"
#include "runtime/base/crypto.hpp"
#include "runtime/components/checkpoint_images.hpp"
#include "runtime/components/devices_component.hpp"
#include "runtime/pg/database_image.hpp"
#include "runtime/store/state_codec.hpp"

namespace dsmil {

namespace {

result<std::string> arg_checkpoint(node_context& ctx, const std::string& id) {
  if (auto err = require(id, "id")) return err;
  return ctx.store->resolve(id);
}

// Applies the retention policy: deletes the automatic checkpoints it drops,
// then collects their chunks. Returns the ids removed and the first error.
std::pair<std::vector<std::string>, error> prune(node_context& ctx) {
  std::vector<std::string> removed;
  for (auto& id : retention_victims(ctx.retention, ctx.store->list())) {
    if (auto err = ctx.store->remove(id)) return {removed, err};
    removed.push_back(id);
  }
  if (!removed.empty()) {
    spdlog::info("retention removed {} automatic checkpoint(s)", removed.size());
    auto gc = ctx.store->gc();
    if (!gc) return {removed, gc.err()};
  }
  return {removed, {}};
}

// The configuration and security records (PCR values), with room to spare.
constexpr uint64_t other_records_bytes = 4096;

} // namespace

void hold_reserve(node_context& ctx) {
  uint64_t bytes = uint64_t{ctx.cfg.store_reserve_kib} * 1024;
  if (bytes == 0) {
    auto fs = ctx.os->space(ctx.store->dir());
    const auto list = ctx.store->list();
    // Counted as the saga counts its current state (each record's name, its
    // bytes and 64 more), so the reserve covers what a rollback will ask.
    uint64_t state_bytes = 0;
    for (auto& d : ctx.cfg.devices.devices()) {
      device_state probe;
      probe.id = d.id;
      probe.registers.resize(d.register_count);
      probe.config_blob.resize(d.config_blob_size);
      state_bytes += devices_component::record_name(d.id).size() + encode_device(probe).size() + 64;
    }
    state_bytes += other_records_bytes;
    bytes = automatic_reserve_bytes(
        list.empty() ? 0 : list.back().new_bytes,
        rollback_safety_net_bytes(ctx.cfg.devices.devices().size() + 2, state_bytes),
        fs ? fs->total : 0);
  }
  if (auto err = ctx.reserve->hold(bytes))
    spdlog::warn("the space reserve ({} bytes at {}) is not held: {}", bytes, ctx.reserve->path(),
                 err.message);
}

answer<checkpoint_create_reply> run(node_context& ctx, actor_calls& calls,
                                    const checkpoint_create_request& r) {
  auto start = ctx.os->steady_ns();
  checkpoint_request req;
  req.name = r.name;
  req.description = r.description;
  auto type = parse_enum<checkpoint_type>(r.type);
  if (!type || (*type != checkpoint_type::manual && *type != checkpoint_type::automatic &&
                *type != checkpoint_type::emergency))
    return fail(
        make_error(errc::invalid_argument,
                   "checkpoint type must be manual, automatic or emergency, got '" + r.type + "'"));
  req.type = *type;
  // Every component at one instant, in component order; the store holds
  // each where checkpoint_images.hpp says.
  component_set components(ctx, calls);
  std::vector<std::string> warnings;
  auto image = capture_all(components, warnings);
  if (!image)
    return fail(make_error(image.err().code, "cannot checkpoint: " + image.err().message));
  auto info = create_checkpoint(*ctx.store, req, *image, &ctx.streams);
  if (!info) return fail(info.err());
  auto ms = static_cast<double>(ctx.os->steady_ns() - start) / 1e6;
  spdlog::info("checkpoint {} created: {} devices, {} new bytes, {:.1f} ms", info->id,
               info->device_count, info->new_bytes, ms);
  checkpoint_create_reply body;
  static_cast<checkpoint_view&>(body) = to_view(*info);
  body.duration_ms = ms;
  for (auto& [name, img] : *image) {
    body.components.push_back(name);
    if (!img.detail.empty()) {
      if (!body.capture) body.capture = nlohmann::json::object();
      (*body.capture)[name] = img.detail;
    }
  }
  if (!warnings.empty()) body.warnings = warnings;
  // An automatic reserve grows with what a checkpoint adds (never shrinks
  // here: rewriting it for every checkpoint would cost a write of its size).
  if (ctx.cfg.store_reserve_kib == 0 && 2 * info->new_bytes + 64 * 1024 > ctx.reserve->held())
    hold_reserve(ctx);
  if (req.type == checkpoint_type::automatic) {
    auto pruned = prune(ctx);
    body.pruned = pruned.first;
    if (pruned.second) body.prune_error = pruned.second.message;
  }
  return ok(std::move(body));
}

answer<store_prune_reply> run(node_context& ctx, actor_calls&, const store_prune_request&) {
  auto pruned = prune(ctx);
  if (pruned.second) return fail_with(pruned.second, store_prune_reply{pruned.first});
  return ok(store_prune_reply{pruned.first});
}

answer<retention_reply> run(node_context& ctx, actor_calls&, const retention_request& req) {
  if (!req.key.empty()) {
    if (auto err = require(req.value, "value")) return fail(err);
    auto next = ctx.retention;
    if (auto err = set_retention_value(next, req.key, req.value)) return fail(err);
    ctx.retention = next;
  }
  auto& r = ctx.retention;
  return ok(retention_reply{r.keep_last, r.keep_hourly, r.keep_daily, r.keep_weekly, r.max_count});
}

answer<checkpoint_list_reply> run(node_context& ctx, actor_calls&, const checkpoint_list_request&) {
  checkpoint_list_reply out;
  for (auto& i : ctx.store->list())
    out.checkpoints.push_back(to_view(i));
  return ok(std::move(out));
}

answer<checkpoint_show_reply> run(node_context& ctx, actor_calls&,
                                  const checkpoint_show_request& req) {
  auto id = arg_checkpoint(ctx, req.id);
  if (!id) return fail(id.err());
  auto c = ctx.store->load(*id);
  if (!c) return fail(c.err());
  checkpoint_show_reply body;
  static_cast<checkpoint_view&>(body) = to_view(c->info);
  body.configuration = c->configuration;
  for (auto& d : c->devices)
    body.device_states.push_back(
        device_image_view{format_device_id(d.id), d.enabled, d.security_level, d.registers});
  auto image = image_of(*ctx.store, *c, &ctx.streams);
  if (!image) return fail(image.err());
  if (auto agents = image->find("agents"); agents != image->end()) {
    body.agents.emplace();
    for (auto& [agent, bytes] : agents->second.streams)
      body.agents->push_back({agent, sha256_hex(bytes)});
  }
  if (auto db = image->find("database"); db != image->end()) {
    auto rec = database_record::of(db->second);
    if (!rec) return fail(rec.err());
    body.database =
        database_image_view{rec->database, rec->server_version, {}, rec->sequences.size()};
    for (auto& t : rec->tables)
      body.database->tables.push_back({t.table.label(), t.rows, t.bytes, t.sha256});
  }
  return ok(std::move(body));
}

answer<checkpoint_verify_reply> run(node_context& ctx, actor_calls&,
                                    const checkpoint_verify_request& req) {
  auto id = arg_checkpoint(ctx, req.id);
  if (!id) return fail(id.err());
  auto report = req.chain ? ctx.store->verify_chain(*id) : ctx.store->verify(*id, req.quick);
  if (!report) return fail_with(report.err(), checkpoint_verify_reply{*id, false, req.chain, {}});
  return ok(checkpoint_verify_reply{*id, true, req.chain, report->checks});
}

answer<store_check_reply> run(node_context& ctx, actor_calls&, const store_check_request& req) {
  auto rep = ctx.store->check(req.read_data);
  if (!rep) return fail(rep.err());
  store_check_reply body;
  body.read_data = rep->read_data;
  body.packs = rep->packs;
  body.chunks = rep->chunks;
  body.bytes_read = rep->bytes_read;
  for (auto& d : rep->damaged)
    body.damaged.push_back({d.chunk_id, d.pack, d.offset, d.problem, d.checkpoints});
  body.damaged_checkpoints.assign(rep->damaged_checkpoints.begin(), rep->damaged_checkpoints.end());
  body.problems = rep->problems;
  body.clean = rep->clean();
  if (rep->clean()) return ok(std::move(body));
  return fail_with(make_error(errc::integrity_error,
                              std::to_string(rep->damaged.size()) + " damaged chunk(s) and " +
                                  std::to_string(rep->problems.size()) + " bad manifest(s); " +
                                  std::to_string(rep->damaged_checkpoints.size()) +
                                  " checkpoint(s) affected"),
                   std::move(body));
}

answer<checkpoint_delete_reply> run(node_context& ctx, actor_calls&,
                                    const checkpoint_delete_request& req) {
  auto id = arg_checkpoint(ctx, req.id);
  if (!id) return fail(id.err());
  if (auto err = ctx.store->remove(*id)) return fail(err);
  spdlog::info("checkpoint {} deleted", *id);
  checkpoint_delete_reply body{*id, true, {}, {}};
  // Reclaim its space now; if that fails the checkpoint is still gone and
  // the next gc finishes the job.
  auto gc = ctx.store->gc();
  if (gc)
    body.bytes_reclaimed = gc->bytes_reclaimed;
  else
    body.gc_error = gc.err().message;
  if (ctx.reserve->held() < ctx.reserve->wanted()) hold_reserve(ctx); // room again
  return ok(std::move(body));
}

answer<checkpoint_pin_reply> run(node_context& ctx, actor_calls&,
                                 const checkpoint_pin_request& req) {
  auto id = arg_checkpoint(ctx, req.id);
  if (!id) return fail(id.err());
  if (auto err = ctx.store->pin(*id, req.pin)) return fail(err);
  return ok(checkpoint_pin_reply{*id, req.pin});
}

answer<store_gc_reply> run(node_context& ctx, actor_calls&, const store_gc_request&) {
  auto r = ctx.store->gc();
  if (!r) return fail(r.err());
  if (ctx.reserve->held() < ctx.reserve->wanted()) hold_reserve(ctx); // room again
  return ok(store_gc_reply{r->packs_removed, r->packs_rewritten, r->orphan_packs_removed,
                           r->chunks_dropped, r->bytes_reclaimed});
}

} // namespace dsmil
