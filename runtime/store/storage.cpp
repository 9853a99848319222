// The public storage facade over checkpoint_store.
#include "dsmil/storage.hpp"

#include <cstring>
#include <set>

#include "runtime/store/checkpoint_blob.hpp"
#include "runtime/store/store.hpp"

namespace dsmil {

struct storage::impl {
  std::unique_ptr<checkpoint_store> store;
};

storage::storage(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
storage::~storage() = default;

result<std::unique_ptr<storage>> storage::open(const std::string& dir,
                                               const storage_options& options) {
  if (options.deflate_level < 0 || options.deflate_level > 3)
    return make_error(errc::invalid_argument,
                      "deflate_level must be 0-3, got " + std::to_string(options.deflate_level));
  store_options o;
  o.deflate_level = options.deflate_level;
  o.threads = options.threads;
  o.encrypt = options.encrypt;
  auto s = checkpoint_store::open(env::posix(), dir, o);
  if (!s) return s.err();
  auto p = std::make_unique<impl>();
  p->store = std::move(*s);
  return std::unique_ptr<storage>(new storage(std::move(p)));
}

namespace {

checkpoint summary_of(const checkpoint_info& i) {
  checkpoint c;
  c.id = i.id;
  c.name = i.name;
  c.description = i.description;
  c.type = enum_name(i.type);
  c.created_at = i.created_at;
  c.parent_id = i.parent_id;
  return c;
}

status check_shape(const checkpoint& c) {
  auto type = parse_enum<checkpoint_type>(c.type);
  if (!type || *type == checkpoint_type::damaged)
    return make_error(errc::invalid_argument,
                      "checkpoint type '" + c.type +
                          "' is not one of manual, automatic, emergency, pre-rollback");
  std::set<uint16_t> ids;
  for (auto& d : c.devices)
    if (!ids.insert(d.id).second)
      return make_error(errc::invalid_argument,
                        "device " + format_device_id(d.id) + " appears twice in the checkpoint");
  std::set<std::string> names;
  for (auto& s : c.streams)
    if (s.name.empty() || !names.insert(s.name).second)
      return make_error(errc::invalid_argument,
                        "stream names must be non-empty and unique; '" + s.name + "' is not");
  return {};
}

} // namespace

result<std::string> storage::store_checkpoint(const checkpoint& c) {
  if (auto err = check_shape(c)) return err;
  auto& s = *impl_->store;
  std::vector<stream_ref> streams;
  for (auto& st : c.streams) {
    size_t pos = 0;
    auto ref = s.write_stream(st.name, [&](uint8_t* buf, size_t cap) -> result<size_t> {
      size_t n = std::min(cap, st.bytes.size() - pos);
      std::memcpy(buf, st.bytes.data() + pos, n);
      pos += n;
      return n;
    });
    if (!ref) return ref.err();
    streams.push_back(std::move(*ref));
  }
  std::vector<device_state> devices = c.devices;
  std::sort(devices.begin(), devices.end(),
            [](const device_state& a, const device_state& b) { return a.id < b.id; });
  auto info = s.create({c.name, c.description, *parse_enum<checkpoint_type>(c.type)}, devices,
                       c.configuration, streams);
  if (!info) return info.err();
  return info->id;
}

result<checkpoint> storage::load_checkpoint(const std::string& id) {
  auto& s = *impl_->store;
  auto full = s.resolve(id);
  if (!full) return full.err();
  auto contents = s.load(*full);
  if (!contents) return contents.err();
  checkpoint c = summary_of(contents->info);
  c.devices = std::move(contents->devices);
  c.configuration = std::move(contents->configuration);
  for (auto& ref : contents->streams) {
    checkpoint_stream out{ref.name, {}};
    out.bytes.reserve(ref.size);
    if (auto err = s.read_stream(ref, [&](std::string_view b) {
          out.bytes += b;
          return status{};
        }))
      return err;
    c.streams.push_back(std::move(out));
  }
  return c;
}

status storage::restore_stream(const std::string& id, const std::string& stream,
                               const std::string& path) {
  auto& s = *impl_->store;
  auto full = s.resolve(id);
  if (!full) return full.err();
  auto contents = s.load(*full);
  if (!contents) return contents.err();
  for (auto& ref : contents->streams)
    if (ref.name == stream) return s.restore_stream(ref, path);
  return make_error(errc::not_found, "checkpoint " + *full + " has no stream '" + stream + "'");
}

std::vector<checkpoint> storage::list() const {
  std::vector<checkpoint> out;
  for (auto& i : impl_->store->list())
    out.push_back(summary_of(i));
  return out;
}

result<integrity_report> storage::verify_storage_integrity(bool read_data) {
  auto r = impl_->store->check(read_data);
  if (!r) return r.err();
  integrity_report out;
  out.packs = r->packs;
  out.chunks = r->chunks;
  out.bytes_read = r->bytes_read;
  for (auto& d : r->damaged)
    out.damaged.push_back(d.problem); // names the pack, the chunk and the offset
  out.affected.assign(r->damaged_checkpoints.begin(), r->damaged_checkpoints.end());
  out.problems = r->problems;
  return out;
}

result<std::vector<std::string>> storage::verify_checkpoint(const std::string& id, bool quick) {
  auto full = impl_->store->resolve(id);
  if (!full) return full.err();
  auto r = impl_->store->verify(*full, quick);
  if (!r) return r.err();
  return r->checks;
}

status storage::remove_checkpoint(const std::string& id) {
  auto full = impl_->store->resolve(id);
  if (!full) return full.err();
  if (auto err = impl_->store->remove(*full)) return err;
  auto gc = impl_->store->gc();
  return gc ? status{} : gc.err();
}

result<std::string> storage::compress_checkpoint(const checkpoint& c) const {
  if (auto err = check_shape(c)) return err;
  return encode_checkpoint_blob(c, nullptr);
}

result<checkpoint> storage::decompress_checkpoint(std::string_view blob) const {
  return decode_checkpoint_blob(blob, nullptr);
}

result<std::string> storage::encrypt_checkpoint(const checkpoint& c) const {
  if (auto err = check_shape(c)) return err;
  const auto* keys = impl_->store->data_keys();
  if (keys == nullptr)
    return make_error(errc::unavailable,
                      "store " + impl_->store->dir() +
                          " has no data key: create it with encryption on (storage_options::"
                          "encrypt, [store] encrypt = true) to encrypt checkpoints");
  return encode_checkpoint_blob(c, keys);
}

result<checkpoint> storage::decrypt_checkpoint(std::string_view blob) const {
  const auto* keys = impl_->store->data_keys();
  if (keys == nullptr)
    return make_error(errc::unavailable,
                      "store " + impl_->store->dir() +
                          " has no data key, so it cannot decrypt; use the store that sealed it");
  return decode_checkpoint_blob(blob, keys);
}

} // namespace dsmil
