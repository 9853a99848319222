#include "runtime/devices/device_map.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "runtime/os/env.hpp"
#include "runtime/config/toml_util.hpp"

namespace dsmil {

namespace tu = toml_util;

namespace {

constexpr int64_t max_register_count = 4096;
constexpr int64_t max_blob_size = 1 << 20;

std::string default_name(device_id id) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "DSMIL%uD%X", (id >> 4) & 0xF, id & 0xF);
  return buf;
}

error bad(const std::string& where, const std::string& what) {
  return make_error(errc::config_error, where + what);
}

// Reads `id` from an entry and checks that it is inside the DSMIL range.
status read_id(const toml::table& t, const std::string& source, const std::string& context,
               int64_t& id) {
  id = -1;
  if (auto err = tu::get_int(t, "id", id, source)) return err;
  if (id < 0) return bad(tu::where(source, t), context + " entry has no 'id'");
  if (id < first_device_id || id > last_device_id) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "id 0x%llx is outside 0x8000-0x806B",
                  static_cast<unsigned long long>(id));
    return bad(tu::where(source, *t.get("id")), buf);
  }
  return {};
}

const toml::array* get_array(const toml::table& root, const char* key, const std::string& source,
                             error& err) {
  auto* n = root.get(key);
  if (n == nullptr) return nullptr;
  if (!n->is_array_of_tables()) {
    err = bad(tu::where(source, *n),
              std::string("'") + key + "' must be an array of tables ([[" + key + "]])");
    return nullptr;
  }
  return n->as_array();
}

} // namespace

result<device_map> device_map::load_file(env& e, const std::string& path) {
  auto text = e.read_file(path);
  if (!text)
    return make_error(errc::config_error,
                      "cannot read device map " + path + ": " + text.err().message);
  return parse(*text, path);
}

result<device_map> device_map::parse(const std::string& text, const std::string& source) {
  auto parsed = tu::parse(text, source);
  if (!parsed) return parsed.err();
  const toml::table& root = *parsed;
  if (auto err = tu::check_keys(root, {"defaults", "group", "device", "quarantine", "critical"},
                                source, "the device map"))
    return err;

  int64_t def_regs = 16;
  int64_t def_blob = 256;
  auto defaults = tu::get_table(root, "defaults", source);
  if (!defaults) return defaults.err();
  if (*defaults) {
    auto& d = **defaults;
    if (auto err = tu::check_keys(d, {"register_count", "config_blob_size"}, source, "[defaults]"))
      return err;
    if (auto err = tu::get_int(d, "register_count", def_regs, source)) return err;
    if (auto err = tu::get_int(d, "config_blob_size", def_blob, source)) return err;
  }

  device_map m;
  error err;

  // Groups.
  auto* groups = get_array(root, "group", source, err);
  if (err) return err;
  if (groups == nullptr)
    return bad(source + ": ", "no [[group]] entries: the map needs groups 0-6");
  std::set<int64_t> seen_groups;
  for (auto& node : *groups) {
    auto& t = *node.as_table();
    if (auto e =
            tu::check_keys(t, {"index", "role", "depends_on", "optional"}, source, "[[group]]"))
      return e;
    group_info g;
    int64_t index = -1;
    if (auto e = tu::get_int(t, "index", index, source)) return e;
    if (index < 0 || index >= group_count)
      return bad(tu::where(source, t), "group 'index' must be 0-6");
    if (!seen_groups.insert(index).second)
      return bad(tu::where(source, t), "duplicate group index " + std::to_string(index));
    g.index = static_cast<uint8_t>(index);
    if (auto e = tu::get_string(t, "role", g.role, source)) return e;
    if (auto e = tu::get_bool(t, "optional", g.optional, source)) return e;
    if (auto* deps = t.get("depends_on")) {
      if (!deps->is_array())
        return bad(tu::where(source, *deps), "'depends_on' must be an array of group indexes");
      for (auto& d : *deps->as_array()) {
        auto v = d.value<int64_t>();
        if (!d.is_integer() || !v || *v < 0 || *v >= group_count)
          return bad(tu::where(source, d), "'depends_on' entries must be group indexes 0-6");
        if (*v == index) return bad(tu::where(source, d), "a group cannot depend on itself");
        g.depends_on.push_back(static_cast<uint8_t>(*v));
      }
    }
    m.groups_.push_back(std::move(g));
  }
  if (static_cast<int>(m.groups_.size()) != group_count)
    return bad(source + ": ", "the map defines " + std::to_string(m.groups_.size()) +
                                  " groups; DSMIL has exactly 7 (index 0-6)");
  std::sort(m.groups_.begin(), m.groups_.end(), [](auto& a, auto& b) { return a.index < b.index; });

  // Devices.
  auto* devices = get_array(root, "device", source, err);
  if (err) return err;
  if (devices == nullptr) return bad(source + ": ", "no [[device]] entries");
  std::map<int64_t, const toml::node*> seen;
  for (auto& node : *devices) {
    auto& t = *node.as_table();
    if (auto e = tu::check_keys(t, {"id", "name", "role", "register_count", "config_blob_size"},
                                source, "[[device]]"))
      return e;
    int64_t id;
    if (auto e = read_id(t, source, "[[device]]", id)) return e;
    if ((id & 0xF) >= devices_per_group)
      return bad(tu::where(source, *t.get("id")),
                 format_device_id(static_cast<device_id>(id)) +
                     " is not a device slot: ids end in 0-B (0x80G0-0x80GB)");
    if (auto [it, fresh] = seen.emplace(id, t.get("id")); !fresh)
      return bad(tu::where(source, *t.get("id")),
                 "duplicate id " + format_device_id(static_cast<device_id>(id)) +
                     " (first at line " + std::to_string(it->second->source().begin.line) + ")");
    device_info d;
    d.id = static_cast<device_id>(id);
    d.group = static_cast<uint8_t>((id >> 4) & 0xF);
    d.name = default_name(d.id);
    if (auto e = tu::get_string(t, "name", d.name, source)) return e;
    if (auto e = tu::get_string(t, "role", d.role, source)) return e;
    int64_t regs = def_regs, blob = def_blob;
    if (auto e = tu::get_int(t, "register_count", regs, source)) return e;
    if (auto e = tu::get_int(t, "config_blob_size", blob, source)) return e;
    if (regs < 1 || regs > max_register_count)
      return bad(tu::where(source, t), "register_count must be 1-4096");
    if (blob < 0 || blob > max_blob_size)
      return bad(tu::where(source, t), "config_blob_size must be 0-1048576");
    d.register_count = static_cast<uint32_t>(regs);
    d.config_blob_size = static_cast<uint32_t>(blob);
    m.devices_.push_back(std::move(d));
  }
  std::sort(m.devices_.begin(), m.devices_.end(), [](auto& a, auto& b) { return a.id < b.id; });
  for (int g = 0; g < group_count; ++g)
    for (int x = 0; x < devices_per_group; ++x) {
      auto id = static_cast<device_id>(first_device_id + g * 16 + x);
      if (m.find(id) == nullptr)
        return bad(source + ": ", "device " + format_device_id(id) +
                                      " is missing: the map must list all 84 devices");
    }

  // Quarantine and critical lists name existing devices, once each.
  auto mark = [&](const char* key, auto&& apply) -> status {
    error e;
    auto* arr = get_array(root, key, source, e);
    if (e) return e;
    if (arr == nullptr) return {};
    std::set<int64_t> once;
    for (auto& node : *arr) {
      auto& t = *node.as_table();
      bool q = std::string(key) == "quarantine";
      if (auto e2 = tu::check_keys(t, {"id", q ? "reason" : "role"}, source,
                                   std::string("[[") + key + "]]"))
        return e2;
      int64_t id;
      if (auto e2 = read_id(t, source, std::string("[[") + key + "]]", id)) return e2;
      auto* dev = const_cast<device_info*>(m.find(static_cast<device_id>(id)));
      if (dev == nullptr)
        return bad(tu::where(source, *t.get("id")),
                   std::string(key) + " entry names " +
                       format_device_id(static_cast<device_id>(id)) + ", which is not a device");
      if (!once.insert(id).second)
        return bad(tu::where(source, *t.get("id")),
                   "duplicate " + std::string(key) + " entry for " + format_device_id(dev->id));
      std::string text;
      if (auto e2 = tu::get_string(t, q ? "reason" : "role", text, source)) return e2;
      if (q && text.empty())
        return bad(tu::where(source, t),
                   "quarantine entry for " + format_device_id(dev->id) + " needs a 'reason'");
      apply(*dev, std::move(text));
    }
    return {};
  };
  if (auto e = mark("quarantine", [](device_info& d, std::string why) {
        d.quarantined = true;
        d.quarantine_reason = std::move(why);
      }))
    return e;
  if (auto e = mark("critical", [](device_info& d, std::string role) {
        d.critical = true;
        d.critical_role = std::move(role);
      }))
    return e;

  // Restore order: a topological sort of the group dependencies (Kahn, by index).
  std::vector<bool> placed(group_count, false);
  while (static_cast<int>(m.order_.size()) < group_count) {
    bool progress = false;
    for (auto& g : m.groups_) {
      if (placed[g.index]) continue;
      bool ready = std::all_of(g.depends_on.begin(), g.depends_on.end(),
                               [&](uint8_t d) { return placed[d]; });
      if (ready) {
        placed[g.index] = true;
        m.order_.push_back(g.index);
        progress = true;
        break;
      }
    }
    if (!progress) return bad(source + ": ", "group dependencies form a cycle");
  }
  return m;
}

const device_info* device_map::find(device_id id) const {
  auto it = std::lower_bound(devices_.begin(), devices_.end(), id,
                             [](const device_info& d, device_id v) { return d.id < v; });
  if (it == devices_.end() || it->id != id) return nullptr;
  return &*it;
}

result<device_id> parse_device_id(const std::string& text, const device_map& map) {
  std::string s = text;
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s = s.substr(2);
    base = 16;
  } else if (s.size() == 4 && s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos) {
    base = 16; // "8005" is read as hex: DSMIL ids are always written in hex
  }
  const std::string hint = "; device ids are 0x80G0-0x80GB for groups G = 0-6 (see 'device list')";
  if (s.empty() || s.size() > 8 ||
      s.find_first_not_of(base == 16 ? "0123456789abcdefABCDEF" : "0123456789") !=
          std::string::npos)
    return make_error(errc::invalid_argument, "'" + text + "' is not a device id" + hint);
  unsigned long v = std::stoul(s, nullptr, base);
  if (v > 0xFFFF || map.find(static_cast<device_id>(v)) == nullptr)
    return make_error(errc::no_such_device, "no such device " + text + hint);
  return static_cast<device_id>(v);
}

} // namespace dsmil
