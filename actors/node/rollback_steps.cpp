// Rollback steps: applying component images step by step and reading them
// back to verify them bit for bit; the component set and capture.
#include <set>

#include <spdlog/spdlog.h>

#include "actors/node/rollback_detail.hpp"
#include "runtime/components/checkpoint_images.hpp"

namespace dsmil {

using namespace rollback_detail;

// -- components -------------------------------------------------------------------

std::vector<failed_item> handler_proxy::apply(const saga_step& st, const component_image& target) {
  auto r = calls_.apply(h_, st, target);
  return r ? std::move(*r) : every_item_failed(st, r.err().message);
}

std::vector<failed_item> handler_proxy::read_back(const saga_step& st,
                                                  const component_image& target) {
  auto r = calls_.read_back(h_, st, target);
  return r ? std::move(*r) : every_item_failed(st, r.err().message);
}

component_set::component_set(node_context& ctx, actor_calls& calls)
    : devices_(ctx.cfg.devices, calls) {
  // DESIGN order: configuration, security, devices, then a host's.
  for (auto& h : ctx.handlers) {
    proxies_.push_back(std::make_unique<handler_proxy>(h, calls));
    all_.push_back(proxies_.back().get());
    if (all_.size() == 2) all_.push_back(&devices_);
  }
}

component* component_set::find(const std::string& name) const {
  for (auto* c : all_)
    if (c->name() == name) return c;
  return nullptr;
}

result<system_image> capture_all(const component_set& components,
                                 std::vector<std::string>& warnings) {
  system_image image;
  for (auto* c : components.all()) {
    result<component_image> img = make_error(errc::internal, "not captured");
    try {
      img = c->capture();
    } catch (const std::exception& e) {
      img = make_error(errc::internal, std::string("internal error: ") + e.what());
    }
    if (img) {
      warnings.insert(warnings.end(), img->warnings.begin(), img->warnings.end());
      image.emplace(c->name(), std::move(*img));
      continue;
    }
    if (!c->optional())
      return make_error(img.err().code,
                        "component " + c->name() + " cannot be captured: " + img.err().message);
    warnings.push_back("optional component " + c->name() +
                       " is unavailable and is absent from the checkpoint (" + img.err().message +
                       ")");
  }
  return image;
}

status hold_all(const component_set& components, std::vector<std::string>& warnings) {
  std::vector<component*> held;
  for (auto* c : components.all()) {
    result<std::vector<std::string>> w = make_error(errc::internal, "not held");
    try {
      w = c->hold();
    } catch (const std::exception& e) {
      w = make_error(errc::internal, std::string("internal error: ") + e.what());
    }
    if (!w) {
      for (auto* h : held)
        for (auto& line : h->release())
          warnings.push_back(line);
      return make_error(w.err().code,
                        "component " + c->name() +
                            " cannot be held still for the rollback: " + w.err().message);
    }
    held.push_back(c);
    warnings.insert(warnings.end(), w->begin(), w->end());
  }
  return {};
}

void release_all(const component_set& components, std::vector<std::string>& warnings) {
  for (auto* c : components.all()) {
    try {
      for (auto& line : c->release())
        warnings.push_back(line);
    } catch (const std::exception& e) {
      warnings.push_back("component " + c->name() + " cannot be released: " + e.what());
    }
  }
}

namespace rollback_detail {

std::string journal_dir(const node_context& ctx) {
  return ctx.store->dir() + "/journal";
}

double ms_since(node_context& ctx, int64_t start_ns) {
  return static_cast<double>(ctx.os->steady_ns() - start_ns) / 1e6;
}

size_t item_count(const std::vector<saga_step>& steps) {
  size_t n = 0;
  for (auto& st : steps)
    n += st.items.size();
  return n;
}

json rolled_back_json(const std::vector<saga_step>& steps) {
  json rolled_back = {{"components", json::array()}};
  for (auto& st : steps) {
    auto& items = rolled_back[st.component];
    if (items.is_null()) {
      items = json::array();
      rolled_back["components"].push_back(st.component);
    }
    for (auto& item : st.items)
      items.push_back(item);
  }
  return rolled_back;
}

error step_error(const node_config& cfg, const saga_step& st,
                 const std::vector<failed_item>& failed, int late) {
  const std::string first =
      failed.empty()
          ? ""
          : ": " + (failed[0].id == st.component ? "" : failed[0].id + ": ") + failed[0].error;
  if (late == 2)
    return make_error(errc::timeout, "the rollback took longer than timeout_ms (" +
                                         std::to_string(cfg.rollback_timeout_ms) + " ms) in " +
                                         st.name + first);
  if (late == 1)
    return make_error(errc::timeout, st.name + " took longer than step_timeout_ms (" +
                                         std::to_string(cfg.rollback_step_timeout_ms) + " ms)" +
                                         first);
  return make_error(errc::rollback_failed,
                    "rollback stopped in " + st.name + " (" + st.component + ")" + first);
}

namespace {

const component_image* image_for(const system_image& image, const std::string& name) {
  auto it = image.find(name);
  return it == image.end() ? nullptr : &it->second;
}

template <class F>
std::vector<failed_item>
each_step(const component_set& components, const std::vector<saga_step>& steps,
          const std::vector<size_t>& order, const system_image& image, F fn) {
  std::vector<failed_item> failed;
  for (auto i : order) {
    auto& st = steps[i];
    auto* c = components.find(st.component);
    auto* img = image_for(image, st.component);
    std::vector<failed_item> f;
    if (c == nullptr)
      f = every_item_failed(st, "component " + st.component + " is not configured on this node");
    else if (img == nullptr)
      f = every_item_failed(st, "the checkpoint holds nothing of component " + st.component);
    else
      f = fn(*c, st, *img);
    failed.insert(failed.end(), f.begin(), f.end());
  }
  return failed;
}

} // namespace

std::vector<failed_item> read_back_steps(const component_set& components,
                                         const std::vector<saga_step>& steps,
                                         const std::vector<size_t>& order,
                                         const system_image& image) {
  return each_step(components, steps, order, image,
                   [](component& c, const saga_step& st, const component_image& img) {
                     return c.read_back(st, img);
                   });
}

std::vector<failed_item> apply_steps(const component_set& components,
                                     const std::vector<saga_step>& steps,
                                     const std::vector<size_t>& order, const system_image& image) {
  auto failed = each_step(components, steps, order, image,
                          [](component& c, const saga_step& st, const component_image& img) {
                            return c.apply(st, img);
                          });
  std::set<std::string> known;
  for (auto& f : failed)
    known.insert(f.id);
  for (auto& f : read_back_steps(components, steps, order, image))
    if (known.insert(f.id).second) failed.push_back(std::move(f));
  return failed;
}

result<system_image> load_image(node_context& ctx, const std::string& id) {
  auto contents = ctx.store->load(id);
  if (!contents) return contents.err();
  return image_of(*ctx.store, *contents, &ctx.streams);
}

} // namespace rollback_detail

} // namespace dsmil
