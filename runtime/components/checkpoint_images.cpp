#include "runtime/components/checkpoint_images.hpp"

#include <cstring>

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

bool same_chunks(const stream_ref& a, const stream_ref& b) {
  if (a.size != b.size || a.chunks.size() != b.chunks.size()) return false;
  for (size_t i = 0; i < a.chunks.size(); ++i)
    if (a.chunks[i].id != b.chunks[i].id) return false;
  return true;
}

} // namespace

std::optional<stream_ref> stream_cache::same(const std::string& name,
                                             const stream_bytes& bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(name);
  if (it == streams_.end() || it->second.second != bytes) return std::nullopt;
  return it->second.first;
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
  std::vector<std::pair<std::string, byte_source>> to_write;
  struct pending {
    size_t at;
    stream_bytes bytes; // shared, so to_write's sources stay valid
  };
  std::vector<pending> written;
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
        // Unchanged since the last checkpoint, and its chunks still stored.
        if (cache)
          if (auto ref = cache->same(stream, bytes); ref && store.has_chunks(*ref)) {
            streams.push_back(std::move(*ref));
            return;
          }
        written.push_back({streams.size(), bytes});
        to_write.emplace_back(stream, from_string(bytes));
        streams.emplace_back();
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
  for (auto& s : contents.streams) {
    for (auto part : {records_part, streams_part}) {
      auto at = s.name.find(part);
      if (at == std::string::npos || at == 0) continue;
      stream_bytes bytes;
      if (auto cached = cache ? cache->bytes_of(s) : std::nullopt) {
        bytes = std::move(*cached);
      } else {
        std::string read;
        read.reserve(s.size);
        auto err = store.read_stream(s, [&](std::string_view run) -> status {
          read.append(run);
          return {};
        });
        if (err) return err;
        bytes = stream_bytes(std::move(read));
      }
      auto& img = out[s.name.substr(0, at)];
      auto key = s.name.substr(at + std::strlen(part));
      if (std::strcmp(part, records_part) == 0)
        img.records[key] = bytes.str();
      else
        img.streams[key] = std::move(bytes);
      break;
    }
  }
  return out;
}

} // namespace dsmil
