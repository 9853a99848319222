#include "runtime/config/node_config.hpp"

#include <cctype>

#include "runtime/store/chunker.hpp"
#include "runtime/os/env.hpp"
#include "runtime/config/toml_util.hpp"
#include "runtime/keys/tpm_key.hpp"

namespace dsmil {

namespace tu = toml_util;

namespace {

template <class T>
status get_uint(const toml::table& t, const char* key, T& out, int64_t lo, int64_t hi,
                const std::string& source) {
  int64_t v = static_cast<int64_t>(out);
  if (auto err = tu::get_int(t, key, v, source)) return err;
  if (v < lo || v > hi)
    return make_error(errc::config_error, tu::where(source, *t.get(key)) + "'" + key +
                                              "' must be between " + std::to_string(lo) + " and " +
                                              std::to_string(hi));
  out = static_cast<T>(v);
  return {};
}

// Runs `f(table)` when `key` is a table in `root`; checks its keys first.
template <class F>
status section(const toml::table& root, const char* key, std::initializer_list<const char*> allowed,
               const std::string& source, F&& f) {
  auto t = tu::get_table(root, key, source);
  if (!t) return t.err();
  if (*t == nullptr) return {};
  if (auto err = tu::check_keys(**t, allowed, source, std::string("[") + key + "]")) return err;
  return f(**t);
}

status parse_faults(const toml::table& t, const std::string& source, const device_map& map,
                    std::map<device_id, fault_spec>& out) {
  for (auto&& [k, v] : t) {
    auto id = parse_device_id(std::string(k.str()), map);
    if (!id)
      return make_error(errc::config_error,
                        tu::where(source, v) + "[devices.faults]: " + id.err().message);
    if (!v.is_table())
      return make_error(errc::config_error,
                        tu::where(source, v) + "fault entry must be a table of settings");
    auto& ft = *v.as_table();
    if (auto err = tu::check_keys(
            ft, {"error_rate", "latency_ms", "offline", "stuck_register", "thermal_spike"}, source,
            "[devices.faults]"))
      return err;
    fault_spec f;
    if (auto err = tu::get_double(ft, "error_rate", f.error_rate, source)) return err;
    if (f.error_rate < 0 || f.error_rate > 1)
      return make_error(errc::config_error, tu::where(source, ft) + "error_rate must be 0-1");
    if (auto err = get_uint(ft, "latency_ms", f.latency_ms, 0, 60000, source)) return err;
    if (auto err = tu::get_bool(ft, "offline", f.offline, source)) return err;
    if (auto err = get_uint(ft, "stuck_register", f.stuck_register, -1, 4095, source)) return err;
    if (auto err = tu::get_bool(ft, "thermal_spike", f.thermal_spike, source)) return err;
    out[*id] = f;
  }
  return {};
}

} // namespace

status parse_host_port(const std::string& text, std::string& host, uint16_t& port) {
  auto pos = text.rfind(':');
  auto fail = [&] {
    return make_error(errc::invalid_argument,
                      "'" + text + "' is not HOST:PORT (for example 127.0.0.1:7411)");
  };
  if (pos == std::string::npos || pos == 0 || pos + 1 == text.size()) return fail();
  auto p = text.substr(pos + 1);
  if (p.find_first_not_of("0123456789") != std::string::npos || p.size() > 5) return fail();
  unsigned long v = std::stoul(p);
  if (v > 65535) return fail();
  host = text.substr(0, pos);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  port = static_cast<uint16_t>(v);
  return {};
}

result<node_config> node_config::parse(const std::string& text, const std::string& source,
                                       const std::string& base_dir, env* files) {
  auto parsed = tu::parse(text, source);
  if (!parsed) return parsed.err();
  const toml::table& root = *parsed;
  if (auto err = tu::check_keys(root,
                                {"node", "devices", "breaker", "retry", "supervision", "thermal",
                                 "configuration", "store", "checkpoints", "retention", "keys",
                                 "rollback", "components", "agents", "database", "tls"},
                                source, "the node config"))
    return err;
  node_config c;
  c.source = source;
  std::string map_file = "devices.toml";
  bool map_explicit = false;
  std::string listen = "127.0.0.1:7411";
  const toml::table* faults = nullptr;
  std::string faults_where;

  if (auto err = section(root, "node", {"data_dir", "listen", "log_level", "device_map"}, source,
                         [&](const toml::table& t) -> status {
                           if (auto e = tu::get_string(t, "data_dir", c.data_dir, source)) return e;
                           if (auto e = tu::get_string(t, "listen", listen, source)) return e;
                           if (auto e = tu::get_string(t, "log_level", c.log_level, source))
                             return e;
                           map_explicit = t.contains("device_map");
                           return tu::get_string(t, "device_map", map_file, source);
                         }))
    return err;
  if (auto err = parse_host_port(listen, c.listen_host, c.listen_port))
    return make_error(errc::config_error, source + ": [node] listen: " + err.message);
  if (c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info" &&
      c.log_level != "warn" && c.log_level != "error")
    return make_error(errc::config_error,
                      source + ": [node] log_level must be trace, debug, info, warn or error");

  if (auto err = section(root, "devices", {"backend", "seed", "state_file", "faults"}, source,
                         [&](const toml::table& t) -> status {
                           if (auto e = tu::get_string(t, "backend", c.backend, source)) return e;
                           if (auto e = tu::get_string(t, "state_file", c.sim_state_file, source))
                             return e;
                           int64_t seed = static_cast<int64_t>(c.seed);
                           if (auto e = tu::get_int(t, "seed", seed, source)) return e;
                           c.seed = static_cast<uint64_t>(seed);
                           auto f = tu::get_table(t, "faults", source);
                           if (!f) return f.err();
                           faults = *f;
                           return {};
                         }))
    return err;
  if (c.backend != "sim")
    return make_error(errc::config_error, source + ": [devices] backend '" + c.backend +
                                              "' is not available; use \"sim\"");

  if (auto err = section(
          root, "breaker", {"failure_threshold", "open_ms", "success_threshold"}, source,
          [&](const toml::table& t) -> status {
            if (auto e =
                    get_uint(t, "failure_threshold", c.breaker.failure_threshold, 1, 1000, source))
              return e;
            if (auto e = get_uint(t, "open_ms", c.breaker.open_ms, 1, 86400000, source)) return e;
            return get_uint(t, "success_threshold", c.breaker.success_threshold, 1, 1000, source);
          }))
    return err;
  if (auto err = section(root, "retry", {"attempts", "base_ms", "max_ms", "jitter"}, source,
                         [&](const toml::table& t) -> status {
                           if (auto e = get_uint(t, "attempts", c.retry.attempts, 1, 100, source))
                             return e;
                           if (auto e = get_uint(t, "base_ms", c.retry.base_ms, 0, 3600000, source))
                             return e;
                           if (auto e = get_uint(t, "max_ms", c.retry.max_ms, 0, 3600000, source))
                             return e;
                           if (auto e = tu::get_double(t, "jitter", c.retry.jitter, source))
                             return e;
                           if (c.retry.jitter < 0 || c.retry.jitter > 1)
                             return make_error(errc::config_error,
                                               source + ": [retry] jitter must be 0-1");
                           return {};
                         }))
    return err;
  if (auto err = section(
          root, "supervision", {"max_restarts", "window_ms"}, source,
          [&](const toml::table& t) -> status {
            if (auto e = get_uint(t, "max_restarts", c.supervision.max_restarts, 0, 1000, source))
              return e;
            return get_uint(t, "window_ms", c.supervision.window_ms, 1, 86400000, source);
          }))
    return err;
  if (auto err = section(root, "thermal", {"warn_c", "critical_c"}, source,
                         [&](const toml::table& t) -> status {
                           if (auto e = tu::get_double(t, "warn_c", c.thermal_warn_c, source))
                             return e;
                           return tu::get_double(t, "critical_c", c.thermal_critical_c, source);
                         }))
    return err;
  if (auto err = section(
          root, "rollback",
          {"step_timeout_ms", "timeout_ms", "compensation_step_timeout_ms", "on_interrupted"},
          source, [&](const toml::table& t) -> status {
            if (auto e =
                    get_uint(t, "step_timeout_ms", c.rollback_step_timeout_ms, 1, 3600000, source))
              return e;
            if (auto e = get_uint(t, "timeout_ms", c.rollback_timeout_ms, 1, 3600000, source))
              return e;
            if (auto e = get_uint(t, "compensation_step_timeout_ms",
                                  c.rollback_compensation_step_timeout_ms, 1, 3600000, source))
              return e;
            return tu::get_enum(t, "on_interrupted", c.rollback_on_interrupted, source, "rollback");
          }))
    return err;
  if (auto err = section(
          root, "components", {"call_timeout_ms"}, source, [&](const toml::table& t) -> status {
            return get_uint(t, "call_timeout_ms", c.component_call_timeout_ms, 1, 3600000, source);
          }))
    return err;
  if (auto err = section(
          root, "configuration",
          {"config_version", "agent_concurrency_limit", "thermal_threshold_c", "config_data"},
          source, [&](const toml::table& t) -> status {
            auto& s = c.configuration;
            if (auto e = get_uint(t, "config_version", s.config_version, 0, 0xFFFFFFFF, source))
              return e;
            if (auto e = get_uint(t, "agent_concurrency_limit", s.agent_concurrency_limit, 1,
                                  100000, source))
              return e;
            if (auto e = tu::get_double(t, "thermal_threshold_c", s.thermal_threshold_c, source))
              return e;
            return tu::get_string(t, "config_data", s.config_data, source);
          }))
    return err;
  if (auto err =
          section(root, "store",
                  {"encrypt", "deflate_level", "chunk_min_kib", "chunk_avg_kib", "chunk_max_kib",
                   "pack_target_mib", "threads", "reserve_kib", "cache_mib"},
                  source, [&](const toml::table& t) -> status {
                    if (auto e = tu::get_bool(t, "encrypt", c.store_encrypt, source)) return e;
                    if (auto e = get_uint(t, "deflate_level", c.store_deflate_level, 0, 3, source))
                      return e;
                    if (auto e = get_uint(t, "chunk_min_kib", c.chunk_min_kib, 1, 65536, source))
                      return e;
                    if (auto e = get_uint(t, "chunk_avg_kib", c.chunk_avg_kib, 1, 65536, source))
                      return e;
                    if (auto e = get_uint(t, "chunk_max_kib", c.chunk_max_kib, 1, 65536, source))
                      return e;
                    if (auto e = get_uint(t, "pack_target_mib", c.pack_target_mib, 1, 4096, source))
                      return e;
                    if (auto e = get_uint(t, "threads", c.store_threads, 0, 1024, source)) return e;
                    if (auto e = get_uint(t, "cache_mib", c.store_cache_mib, 0, 1 << 20, source))
                      return e;
                    return get_uint(t, "reserve_kib", c.store_reserve_kib, 0, 64u << 20, source);
                  }))
    return err;
  if (auto err = validate(
          chunker_params{c.chunk_min_kib * 1024, c.chunk_avg_kib * 1024, c.chunk_max_kib * 1024}))
    return make_error(errc::config_error, source + ": [store] " + err.message);
  if (auto err = section(
          root, "agents",
          {"backend", "stop_timeout_ms", "count", "state_kib", "tasks_per_second", "state_dir",
           "chunk_kib"},
          source, [&](const toml::table& t) -> status {
            auto& a = c.agents;
            if (auto e = tu::get_string(t, "backend", a.backend, source)) return e;
            if (a.backend != "none" && a.backend != "sim")
              return make_error(errc::config_error, tu::where(source, *t.get("backend")) +
                                                        "[agents] backend must be \"none\" or "
                                                        "\"sim\", got '" +
                                                        a.backend + "'");
            if (auto e = get_uint(t, "stop_timeout_ms", a.stop_timeout_ms, 1, 3600000, source))
              return e;
            if (auto e = get_uint(t, "count", a.count, 1, 100000, source)) return e;
            if (auto e = get_uint(t, "state_kib", a.state_kib, 4, 1 << 20, source)) return e;
            if (auto e = get_uint(t, "tasks_per_second", a.tasks_per_second, 0, 10000000, source))
              return e;
            if (auto e = get_uint(t, "chunk_kib", a.chunk_kib, 4, 1024, source)) return e;
            if (t.contains("chunk_kib") && (a.chunk_kib & (a.chunk_kib - 1)) != 0)
              return make_error(errc::config_error,
                                tu::where(source, *t.get("chunk_kib")) +
                                    "[agents] chunk_kib must be a power of two (4 to 1024), got " +
                                    std::to_string(a.chunk_kib));
            return tu::get_string(t, "state_dir", a.state_dir, source);
          }))
    return err;
  if (auto err = section(
          root, "database",
          {"conninfo", "passfile", "tables", "optional", "failure_threshold", "chunk_kib"}, source,
          [&](const toml::table& t) -> status {
            auto& d = c.database;
            if (auto e = tu::get_string(t, "conninfo", d.conninfo, source)) return e;
            if (conninfo_has_password(d.conninfo))
              return make_error(errc::config_error,
                                tu::where(source, *t.get("conninfo")) +
                                    "[database] conninfo holds a password: remove it and put it "
                                    "in the file [database] passfile names (or PGPASSFILE)");
            if (auto e = tu::get_string(t, "passfile", d.passfile, source)) return e;
            if (auto e = tu::get_bool(t, "optional", d.optional, source)) return e;
            if (auto e = get_uint(t, "failure_threshold", d.failure_threshold, 1, 1000, source))
              return e;
            if (auto e = get_uint(t, "chunk_kib", d.chunk_kib, 4, 1024, source)) return e;
            if ((d.chunk_kib & (d.chunk_kib - 1)) != 0)
              return make_error(errc::config_error,
                                tu::where(source, *t.get("chunk_kib")) +
                                    "[database] chunk_kib must be a power of two (4 to 1024), "
                                    "got " +
                                    std::to_string(d.chunk_kib));
            if (auto* node = t.get("tables")) {
              auto* arr = node->as_array();
              const std::string bad = tu::where(source, *node) +
                                      "[database] tables must be an array of table names "
                                      "(\"schema.name\" or \"name\")";
              if (arr == nullptr) return make_error(errc::config_error, bad);
              for (auto& v : *arr) {
                auto name = v.value<std::string>();
                if (!name || name->empty()) return make_error(errc::config_error, bad);
                d.tables.push_back(*name);
              }
            }
            if (d.conninfo.empty() && !t.empty())
              return make_error(errc::config_error,
                                source + ": [database] needs conninfo (a libpq connection "
                                         "string, e.g. \"host=/run/postgresql dbname=app\")");
            return {};
          }))
    return err;
  if (auto err = section(root, "checkpoints", {"automatic_interval_s"}, source,
                         [&](const toml::table& t) -> status {
                           return get_uint(t, "automatic_interval_s", c.automatic_interval_s, 0,
                                           31 * 86400, source);
                         }))
    return err;
  if (auto err = section(
          root, "retention", {"keep_last", "keep_hourly", "keep_daily", "keep_weekly", "max_count"},
          source, [&](const toml::table& t) -> status {
            auto& r = c.retention;
            for (auto [key, field] :
                 {std::pair{"keep_last", &r.keep_last}, std::pair{"keep_hourly", &r.keep_hourly},
                  std::pair{"keep_daily", &r.keep_daily}, std::pair{"keep_weekly", &r.keep_weekly},
                  std::pair{"max_count", &r.max_count}})
              if (auto e = get_uint(t, key, *field, 0, 1000000, source)) return e;
            return {};
          }))
    return err;
  if (auto err = section(root, "tls", {"ca_file", "cert_file", "key_file", "crl_file"}, source,
                         [&](const toml::table& t) -> status {
                           for (auto [key, out] : {std::pair{"ca_file", &c.tls.ca_file},
                                                   std::pair{"cert_file", &c.tls.cert_file},
                                                   std::pair{"key_file", &c.tls.key_file},
                                                   std::pair{"crl_file", &c.tls.crl_file}})
                             if (auto e = tu::get_string(t, key, *out, source)) return e;
                           return {};
                         }))
    return err;
  if (!c.tls.own_pki() &&
      (c.tls.ca_file.empty() || c.tls.cert_file.empty() || c.tls.key_file.empty()))
    return make_error(errc::config_error,
                      source + ": [tls] ca_file, cert_file and key_file go together (an "
                               "operator's own PKI); leave all three empty for the node's own CA");
  if (c.tls.own_pki() && !c.tls.crl_file.empty())
    return make_error(errc::config_error,
                      source + ": [tls] crl_file belongs to an operator's own PKI (with ca_file, "
                               "cert_file, key_file); the node's own CA keeps its list under "
                               "<data_dir>/tls");
  if (auto err = section(
          root, "keys",
          {"provider", "tcti", "handle", "pcrs", "seal_pcrs", "passphrase_file", "on_tpm_failure"},
          source, [&](const toml::table& t) -> status {
            if (auto e = tu::get_enum(t, "provider", c.key_provider, source, "keys")) return e;
            if (auto e = tu::get_string(t, "tcti", c.key_tcti, source)) return e;
            if (auto e = tu::get_string(t, "passphrase_file", c.key_passphrase_file, source))
              return e;
            if (auto e = tu::get_enum(t, "on_tpm_failure", c.key_on_tpm_failure, source, "keys"))
              return e;
            std::string handle;
            if (auto e = tu::get_string(t, "handle", handle, source)) return e;
            if (!handle.empty()) {
              auto h = parse_tpm_handle(handle);
              if (!h) return make_error(errc::config_error, source + ": [keys] " + h.err().message);
              c.key_handle = *h;
            }
            for (auto [name, out] :
                 {std::pair{"pcrs", &c.key_pcrs}, std::pair{"seal_pcrs", &c.key_seal_pcrs}}) {
              auto node = t.get(name);
              if (node == nullptr) continue;
              const std::string bad =
                  source + ": [keys] " + name + " must be an array of PCR numbers 0-23";
              auto* arr = node->as_array();
              if (arr == nullptr) return make_error(errc::config_error, bad);
              out->clear();
              for (auto& v : *arr) {
                auto i = v.value<int64_t>();
                if (!i || *i < 0 || *i > 23) return make_error(errc::config_error, bad);
                out->push_back(static_cast<int>(*i));
              }
            }
            return {};
          }))
    return err;

  // Device map: the file the config names (relative to the config file); when
  // it names none, devices.toml beside it, else the embedded map.
  if (map_file.empty())
    return make_error(errc::config_error, source + ": [node] device_map must name a file");
  std::string map_path = map_file[0] == '/' ? map_file : base_dir + "/" + map_file;
  const bool on_disk = files != nullptr && !base_dir.empty() && files->exists(map_path);
  if (map_explicit && files != nullptr && !base_dir.empty() && !on_disk)
    return make_error(errc::config_error, source + ": [node] device_map: no such file " + map_path);
  result<device_map> map =
      on_disk ? device_map::load_file(*files, map_path)
              : device_map::parse(embedded_devices_toml(), "embedded devices.toml");
  if (!map) return map.err();
  c.devices = std::move(*map);
  if (faults != nullptr)
    if (auto err = parse_faults(*faults, source, c.devices, c.faults)) return err;
  return c;
}

bool conninfo_has_password(const std::string& conninfo) {
  auto uri = conninfo.find("://");
  if (uri != std::string::npos) {
    // postgresql://user:secret@host/db or ...?password=secret
    auto rest = conninfo.substr(uri + 3);
    auto at = rest.find('@');
    auto slash = rest.find('/');
    if (at != std::string::npos && (slash == std::string::npos || at < slash) &&
        rest.substr(0, at).find(':') != std::string::npos)
      return true;
    auto q = conninfo.find('?');
    return q != std::string::npos && (conninfo.find("?password=") != std::string::npos ||
                                      conninfo.find("&password=") != std::string::npos);
  }
  // key = value pairs, separated by spaces; a value may be quoted.
  size_t at = 0;
  while (at < conninfo.size()) {
    while (at < conninfo.size() && std::isspace(static_cast<unsigned char>(conninfo[at])))
      ++at;
    size_t key_end = at;
    while (key_end < conninfo.size() && conninfo[key_end] != '=' &&
           !std::isspace(static_cast<unsigned char>(conninfo[key_end])))
      ++key_end;
    if (conninfo.compare(at, key_end - at, "password") == 0) return true;
    at = key_end;
    while (at < conninfo.size() && (conninfo[at] == '=' || conninfo[at] == ' '))
      ++at;
    if (at < conninfo.size() && conninfo[at] == '\'') {
      for (++at; at < conninfo.size() && conninfo[at] != '\''; ++at)
        if (conninfo[at] == '\\') ++at;
      ++at;
    } else {
      while (at < conninfo.size() && !std::isspace(static_cast<unsigned char>(conninfo[at])))
        ++at;
    }
  }
  return false;
}

result<node_config> node_config::load_file(env& e, const std::string& path) {
  auto text = e.read_file(path);
  if (!text)
    return make_error(errc::config_error, "cannot read config " + path + ": " + text.err().message);
  return parse(*text, path, parent_dir(path), &e);
}

result<node_config> node_config::embedded() {
  return parse(embedded_node_toml(), "embedded dsmil.toml", "");
}

} // namespace dsmil
