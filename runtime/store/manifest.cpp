#include "runtime/store/manifest.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>

#include "runtime/base/crypto.hpp"

namespace dsmil {

using nlohmann::json;

namespace {

std::string root_of(const std::vector<const std::string*>& ids) {
  std::string raw;
  for (auto* id : ids) {
    std::string bytes;
    from_hex(*id, bytes);
    raw += bytes;
  }
  return sha256_hex(raw);
}

// A JSON string: hex ids (almost every string of a manifest) as they are.
void append_string(std::string& out, const std::string& s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '/' ||
           c == '-' || c == '_' || c == '.' || c == ':';
  });
  if (plain) {
    out += '"';
    out += s;
    out += '"';
  } else {
    out += json(s).dump();
  }
}

// The chunk lists, thousands of entries with large agent or database state,
// written straight out, one chunk a line: as json values, built and dumped,
// they cost 1-2 ms of every checkpoint.
std::string devices_text(const manifest& m) {
  std::string out = "[";
  for (size_t k = 0; k < m.devices.size(); ++k) {
    auto& d = m.devices[k];
    out += k == 0 ? "\n        {\"chunk\": " : ",\n        {\"chunk\": ";
    append_string(out, d.chunk.id);
    out += ", \"id\": ";
    append_string(out, format_device_id(d.device));
    out += ", \"size\": " + std::to_string(d.chunk.size) + "}";
  }
  out += m.devices.empty() ? "]" : "\n      ]";
  return out;
}

void append_refs(std::string& out, const std::vector<chunk_ref>& refs, const char* indent) {
  out += '[';
  for (size_t i = 0; i < refs.size(); ++i) {
    out += i == 0 ? "\n" : ",\n";
    out += indent;
    out += '[';
    append_string(out, refs[i].id);
    out += ", " + std::to_string(refs[i].size) + "]";
  }
  if (!refs.empty()) {
    out += '\n';
    out.append(indent, std::strlen(indent) - 2);
  }
  out += ']';
}

std::string streams_text(const manifest& m) {
  std::string out = "[";
  for (size_t k = 0; k < m.streams.size(); ++k) {
    auto& s = m.streams[k];
    out += k == 0 ? "\n      {\n" : ",\n      {\n";
    if (s.listed()) {
      out += "        \"list\": {\n          \"base\": ";
      append_refs(out, s.list_base, "            ");
      out += ",\n          \"count\": " + std::to_string(s.count) + ",\n          \"edits\": ";
      append_refs(out, s.list_edits, "            ");
      out += "\n        },\n";
    } else {
      out += "        \"chunks\": ";
      append_refs(out, s.chunks, "          ");
      out += ",\n";
    }
    out += "        \"name\": ";
    append_string(out, s.name);
    out += ",\n        \"root\": ";
    append_string(out, s.root);
    out += ",\n        \"size\": " + std::to_string(s.size) + "\n      }";
  }
  out += m.streams.empty() ? "]" : "\n    ]";
  return out;
}

// Puts `text` where dump() wrote the marker string `mark`: the first match,
// as "components" sorts before every key a person's text can be in.
void splice(std::string& body, const std::string& mark, const std::string& text) {
  const std::string quoted = json(mark).dump();
  auto at = body.find(quoted);
  if (at != std::string::npos) body.replace(at, quoted.size(), text);
}

} // namespace

void compute_roots(manifest& m) {
  m.configuration_root = root_of({&m.configuration.id});
  std::vector<const std::string*> ids;
  for (auto& d : m.devices)
    ids.push_back(&d.chunk.id);
  m.devices_root = root_of(ids);
  std::vector<const std::string*> roots = {&m.configuration_root, &m.devices_root};
  for (auto& s : m.streams) {
    if (s.resolved()) s.root = chunks_root(s.chunks);
    roots.push_back(&s.root);
  }
  m.merkle_root = root_of(roots);
}

std::string chunks_root(const std::vector<chunk_ref>& chunks) {
  std::vector<const std::string*> ids;
  ids.reserve(chunks.size());
  for (auto& c : chunks)
    ids.push_back(&c.id);
  return root_of(ids);
}

std::vector<const chunk_ref*> chunk_refs(const manifest& m) {
  std::vector<const chunk_ref*> all = {&m.configuration};
  for (auto& d : m.devices)
    all.push_back(&d.chunk);
  for (auto& s : m.streams) {
    for (auto* list : {&s.list_base, &s.list_edits})
      for (auto& c : *list)
        all.push_back(&c);
    for (auto& c : s.chunks)
      all.push_back(&c);
  }
  return all;
}

std::string format_time(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1000000000);
  int ms = static_cast<int>((unix_ns / 1000000) % 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

std::string encode_manifest(const manifest& m) {
  const auto& i = m.info;
  // Markers where the hand-written lists go (strings a manifest's own data
  // never starts with: a control character).
  const std::string devices_mark = std::string(1, 1) + "devices",
                    streams_mark = std::string(1, 1) + "streams";
  json parent = nullptr;
  if (!i.parent_id.empty())
    parent = {{"id", i.parent_id}, {"manifest_sha256", i.parent_manifest_sha256}};
  json body = {
      {"format", std::any_of(m.streams.begin(), m.streams.end(),
                             [](const stream_entry& s) { return s.listed(); })
                     ? manifest_format
                     : 1},
      {"id", i.id},
      {"name", i.name},
      {"description", i.description},
      {"type", enum_name(i.type)},
      {"created_at", i.created_at},
      {"created_unix_ns", i.created_unix_ns},
      {"parent", parent},
      {"components",
       {{"configuration",
         {{"root", m.configuration_root},
          {"chunks", json::array({{{"id", m.configuration.id}, {"size", m.configuration.size}}})}}},
        {"devices",
         {{"root", m.devices_root}, {"count", m.devices.size()}, {"devices", devices_mark}}},
        {"streams", streams_mark}}},
      {"sizes", {{"logical_bytes", i.logical_bytes}, {"new_bytes", i.new_bytes}}},
      {"merkle_root", m.merkle_root},
      {"signer", {{"provider", i.provider}, {"key_id", i.key_id}}},
  };
  const auto& sec = m.security;
  if (!sec.pcrs.empty()) {
    json pcrs = json::object();
    for (auto& [index, value] : sec.pcrs)
      pcrs[std::to_string(index)] = value;
    body["components"]["security"] = {
        {"pcr_bank", "sha256"},
        {"pcrs", pcrs},
        {"quote",
         {{"ak_key_id", sec.ak_key_id},
          {"attest", to_hex(reinterpret_cast<const uint8_t*>(sec.quote_attest.data()),
                            sec.quote_attest.size())},
          {"signature", to_hex(reinterpret_cast<const uint8_t*>(sec.quote_signature.data()),
                               sec.quote_signature.size())}}},
        {"counter", sec.counter}};
  }
  std::string out = body.dump(2);
  splice(out, devices_mark, devices_text(m));
  splice(out, streams_mark, streams_text(m));
  return out + "\n";
}

result<manifest> decode_manifest(const std::string& body, const std::string& path) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(errc::integrity_error, path + ": manifest is not valid JSON");
  manifest m;
  try {
    const int format = j.at("format").get<int>();
    if (format != 1 && format != manifest_format)
      return make_error(errc::integrity_error,
                        path + ": unknown manifest format " + j.at("format").dump());
    auto& i = m.info;
    i.id = j.at("id").get<std::string>();
    i.name = j.at("name").get<std::string>();
    i.description = j.at("description").get<std::string>();
    auto type = parse_enum<checkpoint_type>(j.at("type").get<std::string>());
    if (!type || *type == checkpoint_type::damaged)
      return make_error(errc::integrity_error,
                        path + ": unknown checkpoint type " + j.at("type").dump());
    i.type = *type;
    i.created_at = j.at("created_at").get<std::string>();
    i.created_unix_ns = j.at("created_unix_ns").get<int64_t>();
    if (!j.at("parent").is_null()) {
      i.parent_id = j["parent"].at("id").get<std::string>();
      i.parent_manifest_sha256 = j["parent"].at("manifest_sha256").get<std::string>();
    }
    auto& comps = j.at("components");
    auto& cfg = comps.at("configuration");
    auto& chunks = cfg.at("chunks");
    if (!chunks.is_array() || chunks.size() != 1)
      return make_error(errc::integrity_error, path + ": configuration must have one chunk");
    m.configuration.id = chunks[0].at("id").get<std::string>();
    m.configuration.size = chunks[0].at("size").get<uint64_t>();
    for (auto& d : comps.at("devices").at("devices")) {
      device_chunk dc;
      std::string id = d.at("id").get<std::string>();
      dc.device = static_cast<device_id>(std::stoul(id, nullptr, 16));
      dc.chunk.id = d.at("chunk").get<std::string>();
      dc.chunk.size = d.at("size").get<uint64_t>();
      m.devices.push_back(std::move(dc));
    }
    i.device_count = static_cast<uint32_t>(m.devices.size());
    std::vector<std::string> stream_roots;
    for (auto& s : comps.at("streams")) {
      stream_entry e;
      e.name = s.at("name").get<std::string>();
      e.size = s.at("size").get<uint64_t>();
      auto refs = [](const json& list, std::vector<chunk_ref>& out) {
        for (auto& c : list)
          out.push_back({c.at(0).get<std::string>(), c.at(1).get<uint64_t>()});
      };
      if (format >= 2 && s.contains("list")) {
        auto& l = s["list"];
        refs(l.at("base"), e.list_base);
        refs(l.at("edits"), e.list_edits);
        e.count = l.at("count").get<uint64_t>();
        e.root = s.at("root").get<std::string>(); // checked when the list is resolved
        if (e.list_base.empty())
          return make_error(errc::integrity_error,
                            path + ": stream '" + e.name + "' has a list without a base");
      } else {
        refs(s.at("chunks"), e.chunks);
      }
      stream_roots.push_back(s.at("root").get<std::string>());
      m.streams.push_back(std::move(e));
    }
    if (comps.contains("security")) {
      auto& sec = comps["security"];
      auto& out = m.security;
      for (auto& [index, value] : sec.at("pcrs").items())
        out.pcrs.emplace_back(std::stoi(index), value.get<std::string>());
      std::sort(out.pcrs.begin(), out.pcrs.end());
      auto& q = sec.at("quote");
      out.ak_key_id = q.at("ak_key_id").get<std::string>();
      if (!from_hex(q.at("attest").get<std::string>(), out.quote_attest) ||
          !from_hex(q.at("signature").get<std::string>(), out.quote_signature))
        return make_error(errc::integrity_error, path + ": quote is not hex");
      out.counter = sec.at("counter").get<uint64_t>();
      i.counter = out.counter;
      i.ak_key_id = out.ak_key_id;
    }
    if (j.contains("signer")) {
      i.provider = j["signer"].at("provider").get<std::string>();
      i.key_id = j["signer"].at("key_id").get<std::string>();
    }
    i.logical_bytes = j.at("sizes").at("logical_bytes").get<uint64_t>();
    i.new_bytes = j.at("sizes").at("new_bytes").get<uint64_t>();
    compute_roots(m);
    if (cfg.at("root").get<std::string>() != m.configuration_root ||
        comps.at("devices").at("root").get<std::string>() != m.devices_root ||
        j.at("merkle_root").get<std::string>() != m.merkle_root)
      return make_error(errc::integrity_error,
                        path + ": component roots do not match the chunk lists");
    for (size_t k = 0; k < m.streams.size(); ++k)
      if (stream_roots[k] != m.streams[k].root)
        return make_error(errc::integrity_error, path + ": stream '" + m.streams[k].name +
                                                     "' root does not match its chunks");
  } catch (const std::exception& e) {
    return make_error(errc::integrity_error, path + ": malformed manifest (" + e.what() + ")");
  }
  return m;
}

std::string encode_signature(const signature_file& s) {
  json j = {{"scheme", s.scheme},
            {"provider", s.provider},
            {"key_id", s.key_id},
            {"manifest_sha256", s.manifest_sha256},
            {"value", s.value_hex}};
  return j.dump(2) + "\n";
}

namespace {

bool lower_hex(const std::string& s, size_t size) {
  return (size == 0 ? !s.empty() && s.size() % 2 == 0 : s.size() == size) &&
         s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

} // namespace

result<signature_file> decode_signature(const std::string& text, const std::string& path) {
  // Nothing signs the signature file itself, so it is read strictly: the
  // five known fields, each with a value this build writes, in exactly the
  // bytes encode_signature() makes of them. A flipped bit anywhere is an
  // error, not a silently different value.
  auto bad = [&](const std::string& what) {
    return make_error(errc::integrity_error, path + ": " + what +
                                                 "; the signature file is damaged (restore it "
                                                 "from a copy, or delete the checkpoint)");
  };
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not valid JSON");
  static const char* const fields[] = {"scheme", "provider", "key_id", "manifest_sha256", "value"};
  for (auto& [k, v] : j.items()) {
    if (std::find(std::begin(fields), std::end(fields), k) == std::end(fields))
      return bad("unknown field '" + k + "'");
    if (!v.is_string()) return bad("field '" + k + "' is not a string");
  }
  for (auto f : fields)
    if (!j.contains(f)) return bad(std::string("field '") + f + "' is missing");
  signature_file s;
  s.scheme = j["scheme"].get<std::string>();
  s.provider = j["provider"].get<std::string>();
  s.key_id = j["key_id"].get<std::string>();
  s.manifest_sha256 = j["manifest_sha256"].get<std::string>();
  s.value_hex = j["value"].get<std::string>();
  if (s.scheme != "ecdsa-p256-sha256") return bad("unknown scheme '" + s.scheme + "'");
  if (s.provider != "software" && s.provider != "tpm")
    return bad("unknown provider '" + s.provider + "'");
  if (!lower_hex(s.key_id, 64)) return bad("key_id is not a SHA-256 in hex");
  if (!lower_hex(s.manifest_sha256, 64)) return bad("manifest_sha256 is not a SHA-256 in hex");
  if (!lower_hex(s.value_hex, 0)) return bad("value is not a signature in hex");
  if (encode_signature(s) != text) return bad("not in its canonical form");
  return s;
}

} // namespace dsmil
