#include "runtime/components/checkpoint_images.hpp"

#include <cstring>
#include <deque>

#include "runtime/components/configuration_component.hpp"
#include "runtime/components/devices_component.hpp"
#include "runtime/components/security_component.hpp"
#include "runtime/store/state_codec.hpp"

namespace dsmil {

namespace {

constexpr const char* records_part = "/records/";
constexpr const char* streams_part = "/streams/";

byte_source from_string(const std::string& bytes) {
  auto at = std::make_shared<size_t>(0);
  return [&bytes, at](uint8_t* buf, size_t cap) -> result<size_t> {
    const size_t n = std::min(cap, bytes.size() - *at);
    std::memcpy(buf, bytes.data() + *at, n);
    *at += n;
    return n;
  };
}

// Where `now` differs from `before` (the same length), as overwrites of
// whole blocks, neighbours merged: the store cuts and hashes only around
// them. Comparing costs a fraction of hashing what is equal.
std::vector<stream_edit> edits_between(const std::string& before, const std::string& now) {
  constexpr size_t block = 1024;
  std::vector<stream_edit> out;
  for (size_t at = 0; at < now.size(); at += block) {
    const size_t len = std::min(block, now.size() - at);
    if (std::memcmp(before.data() + at, now.data() + at, len) == 0) continue;
    if (!out.empty() && out.back().offset + out.back().old_length == at) {
      out.back().old_length += len;
      out.back().new_length += len;
    } else {
      out.push_back({at, len, len});
    }
  }
  return out;
}

bool same_chunks(const stream_ref& a, const stream_ref& b) {
  if (a.size != b.size || a.chunks.size() != b.chunks.size()) return false;
  for (size_t i = 0; i < a.chunks.size(); ++i)
    if (a.chunks[i].id != b.chunks[i].id) return false;
  return true;
}

} // namespace

std::optional<std::pair<stream_ref, stream_bytes>>
stream_cache::last(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(name);
  if (it == streams_.end()) return std::nullopt;
  return it->second;
}

std::optional<stream_bytes> stream_cache::bytes_of(const stream_ref& ref) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(ref.name);
  if (it == streams_.end() || !same_chunks(it->second.first, ref)) return std::nullopt;
  return it->second.second;
}

void stream_cache::put(const stream_ref& ref, const stream_bytes& bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_[ref.name] = {ref, bytes};
}

result<checkpoint_info> create_checkpoint(checkpoint_store& store, const checkpoint_request& req,
                                          const system_image& image, stream_cache* cache) {
  std::vector<device_state> devices;
  system_config configuration;
  std::vector<stream_ref> streams;
  // The streams to write, and where each goes in `streams`.
  std::vector<stream_write> to_write;
  struct pending {
    size_t at;
    stream_bytes bytes; // shared, so to_write's sources stay valid
  };
  std::vector<pending> written;
  std::deque<stream_ref> parents; // to_write's, at addresses that stay
  checkpoint_request with_streams = req;
  for (auto& [name, img] : image) {
    if (name == "devices") {
      auto d = devices_component::decode(img);
      if (!d) return d.err();
      devices = std::move(*d);
    } else if (name == "configuration") {
      auto c = configuration_component::decode(img);
      if (!c) return c.err();
      configuration = std::move(*c);
    } else if (name == "security") {
      continue; // the store reads the PCRs and quotes them while signing
    } else {
      auto add = [&](const std::string& stream, const stream_bytes& bytes) {
        auto last = cache ? cache->last(stream) : std::nullopt;
        if (last && (last->first.size != bytes.size() || !store.has_chunks(last->first)))
          last.reset();
        // Unchanged since the last checkpoint: its chunks are this one's.
        if (last && last->second == bytes) {
          streams.push_back(std::move(last->first));
          return;
        }
        stream_write w{stream, from_string(bytes), nullptr, {}, {}, img.chunking};
        if (last) {
          // Changed in places: only the chunks around them are cut again.
          parents.push_back(std::move(last->first));
          w.parent = &parents.back();
          w.edits = edits_between(last->second, bytes);
          w.read = [b = bytes](uint64_t offset, uint8_t* buf, size_t len) -> result<size_t> {
            const std::string& s = b;
            const size_t n = offset >= s.size() ? 0 : std::min<size_t>(len, s.size() - offset);
            std::memcpy(buf, s.data() + offset, n);
            return n;
          };
        }
        written.push_back({streams.size(), bytes});
        streams.emplace_back();
        to_write.push_back(std::move(w));
      };
      for (auto& [key, bytes] : img.records)
        add(name + records_part + key, stream_bytes(bytes));
      for (auto& [key, bytes] : img.streams)
        add(name + streams_part + key, bytes);
    }
  }
  // All in one pipeline: the new chunks of every stream share packs.
  stream_stats stats;
  auto refs = store.write_streams(to_write, &stats);
  if (!refs) return refs.err();
  with_streams.streams_new_bytes += stats.new_bytes;
  for (size_t i = 0; i < written.size(); ++i) {
    if (cache) cache->put((*refs)[i], written[i].bytes);
    streams[written[i].at] = std::move((*refs)[i]);
  }
  return store.create(with_streams, devices, configuration, streams);
}

result<system_image> image_of(checkpoint_store& store, const checkpoint_contents& contents,
                              const stream_cache* cache) {
  system_image out;
  auto& devices = out["devices"];
  for (auto& s : contents.devices)
    devices.records.emplace(devices_component::record_name(s.id), encode_device(s));
  out["configuration"] = configuration_component::encode(contents.configuration);
  // Without a TPM there are no PCRs: the component is there, empty.
  out["security"] = security_component::encode(contents.security.pcrs);
  // The components' streams: from the cache, the rest read all at once.
  struct part_of {
    std::string component, key;
    bool record = false;
    stream_bytes bytes;
  };
  std::vector<part_of> parts;
  std::vector<const stream_ref*> to_read;
  std::vector<size_t> read_into;
  for (auto& s : contents.streams)
    for (auto part : {records_part, streams_part}) {
      auto at = s.name.find(part);
      if (at == std::string::npos || at == 0) continue;
      parts.push_back({s.name.substr(0, at),
                       s.name.substr(at + std::strlen(part)),
                       std::strcmp(part, records_part) == 0,
                       {}});
      if (auto cached = cache ? cache->bytes_of(s) : std::nullopt) {
        parts.back().bytes = std::move(*cached);
      } else {
        to_read.push_back(&s);
        read_into.push_back(parts.size() - 1);
      }
      break;
    }
  auto read = store.read_streams(to_read);
  if (!read) return read.err();
  for (size_t i = 0; i < read_into.size(); ++i)
    parts[read_into[i]].bytes = stream_bytes(std::move((*read)[i]));
  for (auto& p : parts) {
    auto& img = out[p.component];
    if (p.record)
      img.records[p.key] = p.bytes.str();
    else
      img.streams[p.key] = std::move(p.bytes);
  }
  return out;
}

} // namespace dsmil
