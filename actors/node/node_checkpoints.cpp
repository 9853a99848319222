// Node commands that create, list, show, verify and delete checkpoints.
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/node_impl.hpp"
#include "runtime/components/checkpoint_images.hpp"

namespace dsmil {

namespace {

result<std::string> arg_checkpoint(node_context& ctx, const json& args) {
  auto id = arg_string(args, "id");
  if (!id) return id.err();
  return ctx.store->resolve(*id);
}

// Applies the retention policy: deletes the automatic checkpoints it drops,
// then collects their chunks. Returns the ids removed and the first error.
std::pair<json, error> prune(node_context& ctx) {
  json removed = json::array();
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

} // namespace

void hold_reserve(node_context& ctx) {
  uint64_t bytes = uint64_t{ctx.cfg.store_reserve_kib} * 1024;
  if (bytes == 0) {
    auto fs = ctx.os->space(ctx.store->dir());
    const auto list = ctx.store->list();
    uint64_t state_bytes = 0;
    for (auto& d : ctx.cfg.devices.devices())
      state_bytes += uint64_t{d.register_count} * 4 + d.config_blob_size + 64;
    bytes = automatic_reserve_bytes(
        list.empty() ? 0 : list.back().new_bytes,
        rollback_safety_net_bytes(ctx.cfg.devices.devices().size(), state_bytes),
        fs ? fs->total : 0);
  }
  if (auto err = ctx.reserve->hold(bytes))
    spdlog::warn("the space reserve ({} bytes at {}) is not held: {}", bytes, ctx.reserve->path(),
                 err.message);
}

control_reply cmd_checkpoint_create(node_context& ctx, actor_calls& calls, const json& args) {
  auto start = ctx.os->steady_ns();
  checkpoint_request req;
  req.name = args.value("name", std::string());
  req.description = args.value("description", std::string());
  const auto type_name = args.value("type", std::string("manual"));
  auto type = parse_enum<checkpoint_type>(type_name);
  if (!type || (*type != checkpoint_type::manual && *type != checkpoint_type::automatic &&
                *type != checkpoint_type::emergency))
    return error_reply(make_error(errc::invalid_argument,
                                  "checkpoint type must be manual, automatic or emergency, got '" +
                                      type_name + "'"));
  req.type = *type;
  // Every component at one instant, in component order; the store holds
  // each where checkpoint_images.hpp says.
  component_set components(ctx, calls);
  std::vector<std::string> warnings;
  auto image = capture_all(components, warnings);
  if (!image)
    return error_reply(make_error(image.err().code, "cannot checkpoint: " + image.err().message));
  auto info = create_checkpoint(*ctx.store, req, *image);
  if (!info) return error_reply(info.err());
  auto ms = static_cast<double>(ctx.os->steady_ns() - start) / 1e6;
  spdlog::info("checkpoint {} created: {} devices, {} new bytes, {:.1f} ms", info->id,
               info->device_count, info->new_bytes, ms);
  auto body = to_json(*info);
  body["duration_ms"] = ms;
  json components_json = json::array();
  for (auto& [name, img] : *image)
    components_json.push_back(name);
  body["components"] = components_json;
  if (!warnings.empty()) body["warnings"] = warnings;
  // An automatic reserve grows with what a checkpoint adds (never shrinks
  // here: rewriting it for every checkpoint would cost a write of its size).
  if (ctx.cfg.store_reserve_kib == 0 && 2 * info->new_bytes + 64 * 1024 > ctx.reserve->held())
    hold_reserve(ctx);
  if (req.type == checkpoint_type::automatic) {
    auto pruned = prune(ctx);
    body["pruned"] = pruned.first;
    if (pruned.second) body["prune_error"] = pruned.second.message;
  }
  return ok_reply(body);
}

control_reply cmd_store_prune(node_context& ctx, actor_calls&, const json&) {
  auto pruned = prune(ctx);
  if (pruned.second) return error_reply(pruned.second, {{"pruned", pruned.first}});
  return ok_reply({{"pruned", pruned.first}});
}

control_reply cmd_retention(node_context& ctx, actor_calls&, const json& args) {
  if (args.contains("key")) {
    auto value = arg_string(args, "value");
    if (!value) return error_reply(value.err());
    auto next = ctx.retention;
    if (auto err = set_retention_value(next, args["key"].get<std::string>(), *value))
      return error_reply(err);
    ctx.retention = next;
  }
  auto& r = ctx.retention;
  return ok_reply({{"keep_last", r.keep_last},
                   {"keep_hourly", r.keep_hourly},
                   {"keep_daily", r.keep_daily},
                   {"keep_weekly", r.keep_weekly},
                   {"max_count", r.max_count}});
}

control_reply cmd_checkpoint_list(node_context& ctx, actor_calls&, const json&) {
  json out = json::array();
  for (auto& i : ctx.store->list())
    out.push_back(to_json(i));
  return ok_reply({{"checkpoints", out}});
}

control_reply cmd_checkpoint_show(node_context& ctx, actor_calls&, const json& args) {
  auto id = arg_checkpoint(ctx, args);
  if (!id) return error_reply(id.err());
  auto c = ctx.store->load(*id);
  if (!c) return error_reply(c.err());
  auto body = to_json(c->info);
  body["configuration"] = to_json(c->configuration);
  json devices = json::array();
  for (auto& d : c->devices)
    devices.push_back({{"id", format_device_id(d.id)},
                       {"enabled", d.enabled},
                       {"security_level", d.security_level},
                       {"registers", d.registers}});
  body["device_states"] = devices;
  return ok_reply(body);
}

control_reply cmd_checkpoint_verify(node_context& ctx, actor_calls&, const json& args) {
  auto id = arg_checkpoint(ctx, args);
  if (!id) return error_reply(id.err());
  const bool chain = args.value("chain", false);
  const bool quick = args.value("quick", false);
  auto report = chain ? ctx.store->verify_chain(*id) : ctx.store->verify(*id, quick);
  if (!report) return error_reply(report.err(), {{"id", *id}, {"valid", false}, {"chain", chain}});
  return ok_reply({{"id", *id}, {"valid", true}, {"chain", chain}, {"checks", report->checks}});
}

control_reply cmd_store_check(node_context& ctx, actor_calls&, const json& args) {
  auto rep = ctx.store->check(args.value("read_data", false));
  if (!rep) return error_reply(rep.err());
  json damaged = json::array();
  for (auto& d : rep->damaged)
    damaged.push_back({{"chunk", d.chunk_id},
                       {"pack", d.pack},
                       {"offset", d.offset},
                       {"problem", d.problem},
                       {"checkpoints", d.checkpoints}});
  json body = {{"read_data", rep->read_data}, {"packs", rep->packs},
               {"chunks", rep->chunks},       {"bytes_read", rep->bytes_read},
               {"damaged", damaged},          {"damaged_checkpoints", rep->damaged_checkpoints},
               {"problems", rep->problems},   {"clean", rep->clean()}};
  if (rep->clean()) return ok_reply(body);
  return error_reply(make_error(errc::integrity_error,
                                std::to_string(rep->damaged.size()) + " damaged chunk(s) and " +
                                    std::to_string(rep->problems.size()) + " bad manifest(s); " +
                                    std::to_string(rep->damaged_checkpoints.size()) +
                                    " checkpoint(s) affected"),
                     body);
}

control_reply cmd_checkpoint_delete(node_context& ctx, actor_calls&, const json& args) {
  auto id = arg_checkpoint(ctx, args);
  if (!id) return error_reply(id.err());
  if (auto err = ctx.store->remove(*id)) return error_reply(err);
  spdlog::info("checkpoint {} deleted", *id);
  json body = {{"id", *id}, {"deleted", true}};
  // Reclaim its space now; if that fails the checkpoint is still gone and
  // the next gc finishes the job.
  auto gc = ctx.store->gc();
  if (gc)
    body["bytes_reclaimed"] = gc->bytes_reclaimed;
  else
    body["gc_error"] = gc.err().message;
  if (ctx.reserve->held() < ctx.reserve->wanted()) hold_reserve(ctx); // room again
  return ok_reply(body);
}

control_reply cmd_checkpoint_pin(node_context& ctx, actor_calls&, const json& args) {
  auto id = arg_checkpoint(ctx, args);
  if (!id) return error_reply(id.err());
  const bool on = args.value("pin", true);
  if (auto err = ctx.store->pin(*id, on)) return error_reply(err);
  return ok_reply({{"id", *id}, {"pinned", on}});
}

control_reply cmd_store_gc(node_context& ctx, actor_calls&, const json&) {
  auto r = ctx.store->gc();
  if (!r) return error_reply(r.err());
  if (ctx.reserve->held() < ctx.reserve->wanted()) hold_reserve(ctx); // room again
  return ok_reply({{"packs_removed", r->packs_removed},
                   {"packs_rewritten", r->packs_rewritten},
                   {"orphan_packs_removed", r->orphan_packs_removed},
                   {"chunks_dropped", r->chunks_dropped},
                   {"bytes_reclaimed", r->bytes_reclaimed}});
}

} // namespace dsmil
