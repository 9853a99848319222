#include "runtime/components/checkpoint_images.hpp"

#include <cstring>
#include <deque>

#include "runtime/components/configuration_component.hpp"
#include "runtime/components/devices_component.hpp"
#include "runtime/components/security_component.hpp"
#include "runtime/store/state_codec.hpp"
#include "simd/crc64.hpp"

namespace dsmil {

namespace {

constexpr const char* records_part = "/records/";
constexpr const char* streams_part = "/streams/";
constexpr const char* stored_part = "/stored/";

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

} // namespace

void stream_cache::set_budget(uint64_t older_budget_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  budget_ = older_budget_bytes;
  evict();
}

std::vector<stream_cache::version> stream_cache::versions(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<version> out;
  auto it = streams_.find(name);
  if (it != streams_.end())
    for (auto& e : it->second)
      out.push_back({e.ref, e.bytes, e.crc});
  return out;
}

std::optional<stream_ref> stream_cache::sharing(const std::string& name,
                                                const stream_bytes& bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(name);
  if (it == streams_.end()) return std::nullopt;
  auto& list = it->second;
  for (size_t k = 0; k < list.size(); ++k)
    if (list[k].bytes.shares(bytes)) {
      if (k > 0) { // the newest again
        entry e = std::move(list[k]);
        list.erase(list.begin() + static_cast<long>(k));
        older_ -= e.bytes.size();
        older_ += list.front().bytes.size();
        list.insert(list.begin(), std::move(e));
      }
      list.front().used = ++tick_;
      auto ref = list.front().ref;
      evict();
      return ref;
    }
  return std::nullopt;
}

std::optional<stream_bytes> stream_cache::bytes_of(const stream_ref& ref) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(ref.name);
  if (it == streams_.end()) return std::nullopt;
  for (auto& e : it->second)
    if (same_chunks(e.ref, ref)) {
      e.used = ++tick_;
      return e.bytes;
    }
  return std::nullopt;
}

void stream_cache::put(const stream_ref& ref, const stream_bytes& bytes, uint64_t crc) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& list = streams_[ref.name];
  for (size_t k = 0; k < list.size(); ++k)
    if (same_chunks(list[k].ref, ref)) {
      if (k == 0) { // the newest already
        list[0].used = ++tick_;
        return;
      }
      older_ -= list[k].bytes.size();
      list.erase(list.begin() + static_cast<long>(k));
      break;
    }
  if (!list.empty()) older_ += list.front().bytes.size();
  list.insert(list.begin(), entry{ref, bytes, crc, ++tick_});
  evict();
}

void stream_cache::remember(const stream_ref& ref, const stream_bytes& bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& list = streams_[ref.name];
  for (auto& e : list)
    if (same_chunks(e.ref, ref)) {
      e.used = ++tick_;
      return;
    }
  const uint64_t crc = simd::crc64(bytes.str().data(), bytes.size());
  if (list.empty()) {
    // Nothing written under this name yet: the version to diff against.
    list.push_back(entry{ref, bytes, crc, ++tick_});
    return;
  }
  list.push_back(entry{ref, bytes, crc, ++tick_});
  older_ += bytes.size();
  evict();
}

uint64_t stream_cache::older_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return older_;
}

void stream_cache::evict() {
  while (older_ > budget_) {
    std::vector<entry>* from = nullptr;
    size_t at = 0;
    uint64_t oldest = UINT64_MAX;
    for (auto& [name, list] : streams_)
      for (size_t k = 1; k < list.size(); ++k)
        if (list[k].used < oldest) {
          oldest = list[k].used;
          from = &list;
          at = k;
        }
    if (from == nullptr) return;
    older_ -= (*from)[at].bytes.size();
    from->erase(from->begin() + static_cast<long>(at));
  }
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
    uint64_t crc;
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
        // The very bytes of a kept version (an agent not snapshotted again):
        // no need to look at them.
        if (auto same = cache ? cache->sharing(stream, bytes) : std::nullopt;
            same && store.has_chunks(*same)) {
          streams.push_back(std::move(*same));
          return;
        }
        std::optional<stream_cache::version> last;
        auto kept = cache ? cache->versions(stream) : std::vector<stream_cache::version>{};
        const uint64_t crc = cache ? simd::crc64(bytes.str().data(), bytes.size()) : 0;
        if (cache)
          for (auto& v : kept) {
            if (v.ref.size != bytes.size() || !store.has_chunks(v.ref)) continue;
            // A version it is at (unchanged since the last checkpoint, or
            // back at one a rollback restored): its chunks are this one's.
            if (v.crc == crc && v.bytes == bytes) {
              cache->put(v.ref, v.bytes, v.crc);
              streams.push_back(std::move(v.ref));
              return;
            }
            if (!last) last = std::move(v);
          }
        stream_write w{stream, from_string(bytes), nullptr, {}, {}, img.chunking};
        if (last) {
          // Changed in places: only the chunks around them are cut again.
          parents.push_back(std::move(last->ref));
          w.parent = &parents.back();
          w.edits = edits_between(last->bytes, bytes);
          w.read = [b = bytes](uint64_t offset, uint8_t* buf, size_t len) -> result<size_t> {
            const std::string& s = b;
            const size_t n = offset >= s.size() ? 0 : std::min<size_t>(len, s.size() - offset);
            std::memcpy(buf, s.data() + offset, n);
            return n;
          };
        }
        written.push_back({streams.size(), bytes, crc});
        streams.emplace_back();
        to_write.push_back(std::move(w));
      };
      for (auto& [key, bytes] : img.records)
        add(name + records_part + key, stream_bytes(bytes));
      for (auto& [key, bytes] : img.streams)
        add(name + streams_part + key, bytes);
      for (auto& [key, ref] : img.stored) {
        // Written by the capture: named as they are.
        if (!store.has_chunks(ref))
          return make_error(errc::integrity_error,
                            "stream " + key + " of component " + name +
                                " is not in the store (its capture was abandoned?); "
                                "take the checkpoint again");
        streams.push_back(ref);
        streams.back().name = name + stored_part + key;
      }
    }
  }
  // All in one pipeline: the new chunks of every stream share packs.
  stream_stats stats;
  // New chunks up to 1 MiB go into the pack create() writes anyway: one
  // round of fsyncs fewer for a checkpoint that changed little. More is
  // better sealed by the pipeline, beside the hashing.
  held_records held;
  held.limit = uint64_t{1} << 20;
  auto refs = store.write_streams(to_write, &stats, &held);
  if (!refs) return refs.err();
  with_streams.streams_new_bytes += stats.new_bytes;
  for (size_t i = 0; i < written.size(); ++i) {
    if (cache) cache->put((*refs)[i], written[i].bytes, written[i].crc);
    streams[written[i].at] = std::move((*refs)[i]);
  }
  return store.create(with_streams, devices, configuration, streams, &held);
}

result<system_image> image_of(checkpoint_store& store, const checkpoint_contents& contents,
                              stream_cache* cache) {
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
  for (auto& s : contents.streams) {
    // A stored stream stays in the store: its ref is the image's.
    if (auto at = s.name.find(stored_part); at != std::string::npos && at > 0) {
      out[s.name.substr(0, at)].stored[s.name.substr(at + std::strlen(stored_part))] = s;
      continue;
    }
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
  }
  auto read = store.read_streams(to_read);
  if (!read) return read.err();
  for (size_t i = 0; i < read_into.size(); ++i) {
    parts[read_into[i]].bytes = stream_bytes(std::move((*read)[i]));
    if (cache) cache->remember(*to_read[i], parts[read_into[i]].bytes);
  }
  for (auto& p : parts) {
    auto& img = out[p.component];
    if (p.record)
      img.records[p.key] = p.bytes.str();
    else
      img.streams[p.key] = std::move(p.bytes);
  }
  return out;
}

result<stream_ref> store_stream_port::write(const std::string& name, const byte_source& src,
                                            const std::optional<chunker_params>& chunking) {
  std::vector<stream_write> one{stream_write{name, src, nullptr, {}, {}, chunking}};
  auto refs = store_.write_streams(one);
  if (!refs) return refs.err();
  return std::move(refs->front());
}

result<std::vector<stream_ref>> store_stream_port::write_all(const std::vector<input>& streams) {
  std::vector<stream_write> all;
  for (auto& s : streams)
    all.push_back(stream_write{s.name, s.source, nullptr, {}, {}, s.chunking});
  return store_.write_streams(all);
}

status store_stream_port::read(const stream_ref& s, const byte_sink& sink) {
  return store_.read_stream(s, sink);
}

} // namespace dsmil
