// Writing a stream into the store: packs started and sealed, and the
// producer side of the pipeline (stream_pipeline.hpp).
#include "runtime/store/layout.hpp"
#include "runtime/store/stream_pipeline.hpp"

namespace dsmil {

using namespace stream_detail;

std::string checkpoint_store::new_pack_name() {
  uint8_t raw[32];
  random_bytes(raw, sizeof(raw));
  return to_hex(raw, sizeof(raw));
}

status checkpoint_store::make_pack_dir(const std::string& pack) {
  // Stores made before packs/00-ff were created with the store lack some.
  const std::string sub = layout::path(dir_, layout::pack_dir(pack));
  if (env_.exists(sub)) return {};
  if (auto err = env_.create_dirs(sub)) return err;
  return env_.sync_dir(layout::path(dir_, layout::packs_dir));
}

result<std::unique_ptr<open_pack>> checkpoint_store::start_pack() {
  auto p = std::make_unique<open_pack>();
  p->name = new_pack_name();
  p->tmp_path = layout::path(dir_, layout::tmp(p->name + ".pack"));
  auto f = env_.new_writable_file(p->tmp_path, private_file_mode);
  if (!f) return f.err();
  p->file = std::move(*f);
  const std::string head = pack_header();
  if (auto err = p->file->append(head)) return err;
  p->size = head.size();
  return p;
}

status checkpoint_store::finish_pack(open_pack& p) {
  auto fail = [&](const error& err) {
    env_.remove(p.tmp_path);
    return record_write_error(err);
  };
  // The pack and its index are fsynced at once.
  const std::string idx_tmp = layout::path(dir_, layout::tmp(p.name + ".idx"));
  status idx_err, pack_err;
  env_.run_parallel(2, [&](size_t i) {
    if (i == 1) {
      idx_err = write_synced(env_, idx_tmp, p.index);
    } else {
      pack_err = p.file->sync();
      if (!pack_err) pack_err = p.file->close();
    }
  });
  if (pack_err || idx_err) {
    env_.remove(idx_tmp);
    return fail(pack_err ? pack_err : idx_err); // nothing renamed yet
  }
  if (auto err = make_pack_dir(p.name)) return record_background_error(fail(err));
  // Both renames, then both directories fsynced at once: a crash between
  // may leave an index without its pack, which open skips and gc removes.
  const std::string idx_path = layout::path(dir_, layout::index(p.name));
  if (auto err = rename_durable(
          env_, {{p.tmp_path, dir_ + "/" + layout::pack(p.name)}, {idx_tmp, idx_path}})) {
    env_.remove(idx_tmp);
    return record_background_error(fail(err));
  }
  // Only now, with pack and index durable, may a manifest name these chunks.
  std::map<std::string, chunk_location> entries;
  if (auto err = parse_index(p.index, p.name, idx_path, entries)) return err;
  std::lock_guard<std::mutex> guard(index_mu_);
  for (auto& [id, loc] : entries)
    index_[id] = loc; // gc moves live chunks: the newest copy wins
  return {};
}

namespace {

// Reads `src` to its end, cutting it into chunks for `pipe` (on this
// thread: a window of at least max_size bytes ahead).
template <class Pipeline>
void feed(Pipeline& pipe, const chunker& cut, size_t max, std::vector<uint8_t>& buf,
          const byte_source& src) {
  size_t begin = 0, end = 0;
  bool eof = false;
  while (!pipe.failed()) {
    if (!eof && end - begin < max) {
      if (begin > 0) {
        std::copy(buf.begin() + static_cast<long>(begin), buf.begin() + static_cast<long>(end),
                  buf.begin());
        end -= begin;
        begin = 0;
      }
      auto n = src(buf.data() + end, buf.size() - end);
      if (!n) {
        pipe.fail(n.err());
        break;
      }
      if (*n == 0) eof = true;
      end += *n;
      continue;
    }
    if (begin == end) break;
    size_t len = cut.next_cut(buf.data() + begin, end - begin, eof);
    if (len == 0) continue; // no cut in the window yet: read more (never at eof)
    pipe.add(buf.data() + begin, len);
    begin += len;
  }
}

} // namespace

result<stream_ref> checkpoint_store::write_stream(const std::string& name, const byte_source& src,
                                                  stream_stats* stats) {
  auto refs = write_streams({stream_write{name, src, nullptr, {}, {}}}, stats);
  if (!refs) return refs.err();
  return std::move(refs->front());
}

result<std::vector<stream_ref>>
checkpoint_store::write_streams(const std::vector<stream_write>& streams, stream_stats* stats,
                                held_records* hold) {
  if (auto err = check_writable("writes")) return err;
  for (auto& w : streams)
    if (w.chunking)
      if (auto err = validate(*w.chunking))
        return make_error(err.code, "stream '" + w.name + "': " + err.message);
  std::lock_guard<std::recursive_mutex> change(change_mu_);
  std::shared_lock<std::shared_mutex> files(files_mu_);
  stream_pipeline pipe(*this, hold);
  std::vector<uint8_t> buf;
  for (auto& w : streams) {
    if (w.parent != nullptr) {
      if (auto err = feed_changes(pipe, w)) return err;
    } else {
      const chunker cut(w.chunking.value_or(opts_.chunking));
      const size_t max = cut.params().max_size;
      buf.resize(std::max<size_t>(4 * max, batch_target));
      feed(pipe, cut, max, buf, w.source);
    }
    pipe.end_stream(w.name);
  }
  return pipe.finish_all(stats);
}

} // namespace dsmil
