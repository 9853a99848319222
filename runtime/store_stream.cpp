// The store's streaming pipeline: content-defined chunking on the calling
// thread, hashing, dedup, compression and CRC on worker threads, packs sealed
// by whichever worker fills them. Queues are bounded, so memory is
// O(threads x max chunk + pack target) whatever the stream's length.
#include <atomic>
#include <condition_variable>
#include <optional>
#include <set>
#include <thread>

#include "runtime/bounded_queue.hpp"
#include "runtime/store.hpp"

namespace dsmil {

namespace {

struct chunk_job {
  size_t index = 0;
  std::string data;
};

} // namespace

result<std::unique_ptr<open_pack>> checkpoint_store::start_pack() {
  auto p = std::make_unique<open_pack>();
  uint8_t raw[32];
  random_bytes(raw, sizeof(raw));
  p->name = to_hex(raw, sizeof(raw));
  p->tmp_path = dir_ + "/tmp/" + p->name + ".pack.tmp";
  auto f = env_.new_writable_file(p->tmp_path, 0644);
  if (!f) return f.err();
  p->file = std::move(*f);
  const std::string head = pack_header();
  if (auto err = p->file->append(head)) return err;
  p->size = head.size();
  return p;
}

status checkpoint_store::finish_pack(open_pack& p) {
  auto sticky = [&](const error& err) {
    std::lock_guard<std::mutex> guard(sticky_mu_);
    if (!sticky_) sticky_ = err;
    env_.remove(p.tmp_path);
    return err;
  };
  if (auto err = p.file->sync()) return sticky(err);
  if (auto err = p.file->close()) return sticky(err);
  const std::string sub = dir_ + "/packs/" + p.name.substr(0, 2);
  if (!env_.exists(sub)) {
    if (auto err = env_.create_dirs(sub)) return sticky(err);
    if (auto err = env_.sync_dir(dir_ + "/packs")) return sticky(err);
  }
  if (auto err = env_.rename(p.tmp_path, sub + "/" + p.name + ".pack")) return sticky(err);
  if (auto err = env_.sync_dir(sub)) return sticky(err);
  const std::string idx_path = dir_ + "/index/" + p.name + ".idx";
  if (auto err = write(idx_path, p.index)) return err;
  // Only now, with pack and index durable, may a manifest name these chunks.
  std::map<std::string, chunk_location> entries;
  if (auto err = parse_index(p.index, p.name, idx_path, entries)) return err;
  std::lock_guard<std::mutex> guard(index_mu_);
  for (auto& [id, loc] : entries)
    index_[id] = loc; // gc moves live chunks: the newest copy wins
  return {};
}

result<stream_ref> checkpoint_store::write_stream(const std::string& name, const byte_source& src,
                                                  stream_stats* stats) {
  {
    std::lock_guard<std::mutex> guard(sticky_mu_);
    if (sticky_)
      return make_error(errc::io_error, "the store refuses writes after an earlier failure (" +
                                            sticky_.message + "); restart to reopen it");
  }
  if (!can_read_content()) return no_key_error();
  const unsigned threads =
      opts_.threads > 0 ? opts_.threads : std::max(1u, std::thread::hardware_concurrency());
  const chunker cut(opts_.chunking);
  bounded_queue<chunk_job> jobs(2 * threads);
  // Chunk buffers go back to the reader for reuse: no allocation per chunk.
  bounded_queue<std::string> spare(4 * threads);

  std::mutex mu; // guards everything below that workers share
  std::vector<chunk_ref> refs;
  std::set<std::string> claimed; // new chunks some worker is storing in this stream
  std::unique_ptr<open_pack> current;
  error failure;
  stream_stats st;
  std::atomic<bool> failed{false};

  auto fail = [&](const error& e) {
    std::lock_guard<std::mutex> guard(mu);
    if (!failure) failure = e;
    failed = true;
  };

  // Full packs are sealed (fsync, rename, index) on their own thread, so the
  // disk's work overlaps the workers' hashing and compression.
  bounded_queue<std::unique_ptr<open_pack>> full_packs(2);
  std::thread sealer([&] {
    while (auto p = full_packs.pop()) {
      if (failed) {
        env_.remove((*p)->tmp_path);
        continue;
      }
      if (auto e = finish_pack(**p)) fail(e);
    }
  });

  auto worker = [&] {
    simd::deflater deflate(opts_.deflate_level);
    // Data that does not compress (compressed media, ciphertext, noise) is
    // stored raw. After 8 such chunks in a row this worker stops trying and
    // probes one chunk in 64: compression costs as much CPU as hashing.
    uint32_t raw_streak = 0, skip = 0;
    std::string record;
    while (auto job = jobs.pop()) {
      if (failed) continue; // drain
      const digest d = chunk_id(job->data);
      const std::string id = to_hex(d);
      bool is_new;
      {
        std::lock_guard<std::mutex> guard(index_mu_);
        is_new = index_.count(id) == 0;
      }
      {
        std::lock_guard<std::mutex> guard(mu);
        if (refs.size() <= job->index) refs.resize(job->index + 1);
        refs[job->index] = {id, job->data.size()};
        is_new = is_new && claimed.insert(id).second;
      }
      if (is_new) {
        const bool try_deflate = opts_.deflate_level > 0 && skip == 0;
        if (skip > 0) --skip;
        encode_record(d, job->data, try_deflate ? &deflate : nullptr, record, keys_.get());
        if (try_deflate) {
          raw_streak = record_is_deflated(record) ? 0 : raw_streak + 1;
          if (raw_streak >= 8) skip = 63;
        }
        std::unique_ptr<open_pack> full;
        error err;
        {
          std::lock_guard<std::mutex> guard(mu);
          if (!current) {
            auto p = start_pack();
            if (p)
              current = std::move(*p);
            else
              err = p.err();
          }
          if (!err) err = current->append(id, record);
          if (!err) {
            ++st.new_chunks;
            st.new_bytes += job->data.size();
            st.stored_bytes += record.size();
            if (current->size >= opts_.pack_target_bytes) full = std::move(current);
          }
        }
        if (err) fail(err);
        if (full) full_packs.push(std::move(full));
      }
      spare.push(std::move(job->data));
    }
  };

  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i)
    pool.emplace_back(worker);

  // Read and cut on this thread: a window of at least max_size bytes ahead.
  const size_t max = opts_.chunking.max_size;
  std::vector<uint8_t> buf(4 * max);
  size_t begin = 0, end = 0, index = 0;
  bool eof = false;
  while (!failed) {
    if (!eof && end - begin < max) {
      if (begin > 0) {
        std::copy(buf.begin() + static_cast<long>(begin), buf.begin() + static_cast<long>(end),
                  buf.begin());
        end -= begin;
        begin = 0;
      }
      auto n = src(buf.data() + end, buf.size() - end);
      if (!n) {
        fail(n.err());
        break;
      }
      if (*n == 0) eof = true;
      end += *n;
      continue;
    }
    if (begin == end) break;
    size_t len = cut.next_cut(buf.data() + begin, end - begin, eof);
    if (len == 0) continue; // no cut in the window yet: read more (never at eof)
    st.bytes += len;
    ++st.chunks;
    chunk_job job{index++, {}};
    if (auto reuse = spare.try_pop()) job.data = std::move(*reuse);
    job.data.assign(reinterpret_cast<const char*>(buf.data() + begin), len);
    if (!jobs.push(std::move(job))) break;
    begin += len;
  }
  jobs.close();
  for (auto& t : pool)
    t.join();
  if (current) full_packs.push(std::move(current));
  full_packs.close();
  sealer.join();
  if (failed) return failure;
  if (stats) *stats = st;
  return stream_ref{name, st.bytes, std::move(refs)};
}

status checkpoint_store::read_stream(const stream_ref& s, const byte_sink& sink) {
  if (!can_read_content()) return no_key_error();
  // Workers read and decode chunks ahead, at most `window` past the one the
  // sink takes next; the sink gets them in order on this thread.
  const unsigned threads =
      opts_.threads > 0 ? opts_.threads : std::max(1u, std::thread::hardware_concurrency());
  const size_t n = s.chunks.size();
  const size_t window = 4 * static_cast<size_t>(threads);
  std::vector<std::optional<result<std::string>>> slots(window);
  std::mutex mu;
  std::condition_variable ready, room;
  size_t consumed = 0; // chunks handed to the sink
  size_t next = 0;     // next chunk a worker takes
  bool stop = false;

  auto worker = [&] {
    for (;;) {
      size_t k;
      {
        std::unique_lock<std::mutex> lock(mu);
        room.wait(lock, [&] { return stop || next >= n || next < consumed + window; });
        if (stop || next >= n) return;
        k = next++;
      }
      auto r = read_chunk(s.chunks[k].id);
      std::lock_guard<std::mutex> lock(mu);
      slots[k % window].emplace(std::move(r));
      ready.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back(worker);

  status err;
  for (size_t k = 0; k < n && !err; ++k) {
    result<std::string> r = make_error(errc::internal, "unset");
    {
      std::unique_lock<std::mutex> lock(mu);
      ready.wait(lock, [&] { return slots[k % window].has_value(); });
      r = std::move(*slots[k % window]);
      slots[k % window].reset();
      ++consumed;
      room.notify_all();
    }
    if (!r)
      err = r.err();
    else
      err = sink(*r);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
    room.notify_all();
  }
  for (auto& t : pool)
    t.join();
  return err;
}

} // namespace dsmil
