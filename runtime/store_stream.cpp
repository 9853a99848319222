// The store's streaming pipeline. The calling thread reads the stream and cuts
// it into content-defined chunks, handed over in batches of about 1 MiB;
// worker threads hash, dedup, compress, CRC and append new records to a pack
// of their own; full packs are sealed (fsync, rename, index) on a sealer
// thread, so the disk's work overlaps the CPU's. Queues are bounded: memory
// is O(threads x (batch + max chunk)) whatever the stream's length.
//
// Reading goes the other way in batches too: workers read each batch's
// records with one pread per run of adjacent records, decode them straight
// into the batch's buffer, and whichever worker completes the next batch in
// stream order hands it to the sink.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <thread>

#include "runtime/bounded_queue.hpp"
#include "runtime/store.hpp"

namespace dsmil {

namespace {

// Big enough that queue hand-offs and wake-ups cost nothing next to the
// hashing and compression of a batch; small enough to keep every core busy.
constexpr size_t batch_target = 1 << 20;

// Packs sealed at once: a disk flushes several files' writes faster together
// than one after another.
constexpr unsigned sealers = 8;

// A run of consecutive chunks of one stream, cut by the producer.
struct chunk_batch {
  size_t first = 0; // stream index of the first chunk
  std::string data; // the chunks, back to back
  std::vector<uint32_t> lengths;
};

unsigned worker_count(const store_options& o) {
  return o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
}

std::string pack_rel(const std::string& pack) {
  return "packs/" + pack.substr(0, 2) + "/" + pack + ".pack";
}

} // namespace

std::string checkpoint_store::new_pack_name() {
  uint8_t raw[32];
  random_bytes(raw, sizeof(raw));
  return to_hex(raw, sizeof(raw));
}

status checkpoint_store::make_pack_dir(const std::string& pack) {
  // Stores made before packs/00-ff were created with the store lack some.
  const std::string sub = dir_ + "/packs/" + pack.substr(0, 2);
  if (env_.exists(sub)) return {};
  if (auto err = env_.create_dirs(sub)) return err;
  return env_.sync_dir(dir_ + "/packs");
}

result<std::unique_ptr<open_pack>> checkpoint_store::start_pack() {
  auto p = std::make_unique<open_pack>();
  p->name = new_pack_name();
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
  // The pack and its index are fsynced at once.
  const std::string idx_tmp = dir_ + "/tmp/" + p.name + ".idx.tmp";
  status idx_err;
  std::thread index_writer([&] { idx_err = write_synced(env_, idx_tmp, p.index); });
  status pack_err = p.file->sync();
  if (!pack_err) pack_err = p.file->close();
  index_writer.join();
  if (pack_err || idx_err) {
    env_.remove(idx_tmp);
    return sticky(pack_err ? pack_err : idx_err);
  }
  if (auto err = make_pack_dir(p.name)) return sticky(err);
  // Both renames, then both directories fsynced at once: a crash between
  // may leave an index without its pack, which open skips and gc removes.
  const std::string idx_path = dir_ + "/index/" + p.name + ".idx";
  if (auto err = rename_durable(
          env_, {{p.tmp_path, dir_ + "/" + pack_rel(p.name)}, {idx_tmp, idx_path}})) {
    env_.remove(idx_tmp);
    return sticky(err);
  }
  // Only now, with pack and index durable, may a manifest name these chunks.
  std::map<std::string, chunk_location> entries;
  if (auto err = parse_index(p.index, p.name, idx_path, entries)) return err;
  std::lock_guard<std::mutex> guard(index_mu_);
  for (auto& [id, loc] : entries)
    index_[id] = loc; // gc moves live chunks: the newest copy wins
  return {};
}

// Workers and sealer of one write_stream / write_stream_changes call. The
// producer (the calling thread) adds chunks and reused chunk refs in stream
// order; finish() joins everything and returns the stream's chunk list.
class checkpoint_store::stream_pipeline {
public:
  explicit stream_pipeline(checkpoint_store& s)
      : s_(s), threads_(worker_count(s.opts_)), jobs_(2 * threads_), spare_(4 * threads_) {
    for (unsigned i = 0; i < sealers; ++i)
      sealers_.emplace_back([this] { seal(); });
    for (unsigned i = 0; i < threads_; ++i)
      pool_.emplace_back([this] { work(); });
  }
  ~stream_pipeline() {
    if (!joined_) {
      fail(make_error(errc::internal, "stream abandoned"));
      join();
    }
  }
  stream_pipeline(const stream_pipeline&) = delete;
  stream_pipeline& operator=(const stream_pipeline&) = delete;

  bool failed() const { return failed_; }

  void fail(const error& e) {
    std::lock_guard<std::mutex> guard(mu_);
    if (!failure_) failure_ = e;
    failed_ = true;
  }

  /// The next chunk of the stream (copied).
  void add(const uint8_t* p, size_t len) {
    if (batch_.lengths.empty()) {
      batch_.first = next_index_;
      if (auto reuse = spare_.try_pop()) batch_.data = std::move(*reuse);
      batch_.data.clear();
    }
    batch_.data.append(reinterpret_cast<const char*>(p), len);
    batch_.lengths.push_back(static_cast<uint32_t>(len));
    ++next_index_;
    bytes_ += len;
    if (batch_.data.size() >= batch_target) flush();
  }

  /// The next chunk of the stream is one the store holds already.
  status reuse(const chunk_ref& ref) {
    {
      std::lock_guard<std::mutex> guard(s_.index_mu_);
      if (s_.index_.count(ref.id) == 0)
        return make_error(errc::not_found,
                          "chunk " + ref.id.substr(0, 16) +
                              " of the stored stream is no longer in the store (its checkpoint "
                              "was deleted and collected); write the stream in full");
    }
    flush();
    std::lock_guard<std::mutex> guard(mu_);
    if (refs_.size() <= next_index_) refs_.resize(next_index_ + 1);
    refs_[next_index_++] = ref;
    bytes_ += ref.size;
    return {};
  }

  result<stream_ref> finish(const std::string& name, stream_stats* stats) {
    flush();
    join();
    if (failed_) return failure_;
    st_.bytes = bytes_;
    st_.chunks = next_index_;
    if (stats) *stats = st_;
    return stream_ref{name, bytes_, std::move(refs_)};
  }

private:
  void flush() {
    if (batch_.lengths.empty()) return;
    jobs_.push(std::move(batch_));
    batch_ = chunk_batch{};
  }

  void join() {
    jobs_.close();
    for (auto& t : pool_)
      t.join();
    full_packs_.close();
    for (auto& t : sealers_)
      t.join();
    joined_ = true;
  }

  void work() {
    simd::deflater deflate(s_.opts_.deflate_level);
    // Data that does not compress (compressed media, ciphertext, noise) is
    // stored raw. After 8 such chunks in a row this worker stops trying and
    // probes one chunk in 64: compression costs as much CPU as hashing.
    uint32_t raw_streak = 0, skip = 0;
    std::string record;
    std::unique_ptr<open_pack> pack;
    std::vector<digest> ids;
    std::vector<std::string> hex;
    std::vector<char> fresh;
    stream_stats st;
    while (auto job = jobs_.pop()) {
      if (failed_) continue; // drain
      const size_t n = job->lengths.size();
      ids.resize(n);
      hex.resize(n);
      fresh.assign(n, 0);
      size_t off = 0;
      for (size_t k = 0; k < n; ++k) {
        ids[k] = s_.chunk_id(std::string_view(job->data.data() + off, job->lengths[k]));
        hex[k] = to_hex(ids[k]);
        off += job->lengths[k];
      }
      {
        std::lock_guard<std::mutex> guard(s_.index_mu_);
        for (size_t k = 0; k < n; ++k)
          fresh[k] = s_.index_.count(hex[k]) == 0;
      }
      {
        std::lock_guard<std::mutex> guard(mu_);
        if (refs_.size() < job->first + n) refs_.resize(job->first + n);
        for (size_t k = 0; k < n; ++k) {
          refs_[job->first + k] = {hex[k], job->lengths[k]};
          // Another worker may be storing the same new chunk in this stream.
          if (fresh[k]) fresh[k] = claimed_.insert(hex[k]).second;
        }
      }
      off = 0;
      for (size_t k = 0; k < n && !failed_; off += job->lengths[k], ++k) {
        if (!fresh[k]) continue;
        const std::string_view plain(job->data.data() + off, job->lengths[k]);
        const bool try_deflate = s_.opts_.deflate_level > 0 && skip == 0;
        if (skip > 0) --skip;
        encode_record(ids[k], plain, try_deflate ? &deflate : nullptr, record, s_.keys_.get());
        if (try_deflate) {
          raw_streak = record_is_deflated(record) ? 0 : raw_streak + 1;
          if (raw_streak >= 8) skip = 63;
        }
        if (!pack) {
          auto p = s_.start_pack();
          if (!p) {
            fail(p.err());
            break;
          }
          pack = std::move(*p);
        }
        if (auto err = pack->append(hex[k], record)) {
          fail(err);
          break;
        }
        ++st.new_chunks;
        st.new_bytes += plain.size();
        st.stored_bytes += record.size();
        if (pack->size >= s_.opts_.pack_target_bytes) full_packs_.push(std::move(pack));
      }
      spare_.try_push(std::move(job->data));
    }
    if (pack) full_packs_.push(std::move(pack));
    std::lock_guard<std::mutex> guard(mu_);
    st_.new_chunks += st.new_chunks;
    st_.new_bytes += st.new_bytes;
    st_.stored_bytes += st.stored_bytes;
  }

  void seal() {
    while (auto p = full_packs_.pop()) {
      if (failed_) {
        s_.env_.remove((*p)->tmp_path);
        continue;
      }
      if (auto e = s_.finish_pack(**p)) fail(e);
    }
  }

  checkpoint_store& s_;
  const unsigned threads_;
  bounded_queue<chunk_batch> jobs_;
  bounded_queue<std::string> spare_; // batch buffers back to the producer
  bounded_queue<std::unique_ptr<open_pack>> full_packs_{sealers};
  std::vector<std::thread> sealers_;
  std::vector<std::thread> pool_;
  bool joined_ = false;
  std::atomic<bool> failed_{false};

  // Producer only.
  chunk_batch batch_;
  size_t next_index_ = 0;
  uint64_t bytes_ = 0;

  std::mutex mu_; // guards what follows
  error failure_;
  std::vector<chunk_ref> refs_;
  std::set<std::string> claimed_; // new chunks some worker is storing in this stream
  stream_stats st_;
};

status checkpoint_store::writable() {
  if (auto err = refuse_if_read_only()) return err;
  {
    std::lock_guard<std::mutex> guard(sticky_mu_);
    if (sticky_)
      return make_error(errc::io_error, "the store refuses writes after an earlier failure (" +
                                            sticky_.message + "); restart to reopen it");
  }
  if (!can_read_content()) return no_key_error();
  return {};
}

result<stream_ref> checkpoint_store::write_stream(const std::string& name, const byte_source& src,
                                                  stream_stats* stats) {
  if (auto err = writable()) return err;
  stream_pipeline pipe(*this);
  const chunker cut(opts_.chunking);
  // Read and cut on this thread: a window of at least max_size bytes ahead.
  const size_t max = opts_.chunking.max_size;
  std::vector<uint8_t> buf(std::max<size_t>(4 * max, batch_target));
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
  return pipe.finish(name, stats);
}

result<stream_ref> checkpoint_store::write_stream_changes(const std::string& name,
                                                          const stream_ref& parent,
                                                          const std::vector<stream_edit>& edits,
                                                          const byte_reader& read,
                                                          stream_stats* stats) {
  if (auto err = writable()) return err;
  // The edits must describe a stream: sorted, disjoint, inside the parent.
  uint64_t new_size = parent.size, prev_end = 0;
  for (size_t k = 0; k < edits.size(); ++k) {
    const auto& e = edits[k];
    if (e.offset > parent.size || e.old_length > parent.size - e.offset)
      return make_error(errc::invalid_argument,
                        "edit " + std::to_string(k) + " (offset " + std::to_string(e.offset) +
                            ", " + std::to_string(e.old_length) +
                            " bytes) reaches past the end of the stored stream (" +
                            std::to_string(parent.size) + " bytes)");
    if (k > 0 && e.offset < prev_end)
      return make_error(errc::invalid_argument,
                        "edit " + std::to_string(k) + " (offset " + std::to_string(e.offset) +
                            ") overlaps or precedes edit " + std::to_string(k - 1) +
                            " (which ends at " + std::to_string(prev_end) +
                            "); sort the edits by offset and merge overlapping ones");
    prev_end = e.offset + e.old_length;
    new_size = new_size - e.old_length + e.new_length;
  }
  // Where the parent's chunks start (and the stream's end).
  std::vector<uint64_t> starts{0};
  for (auto& c : parent.chunks)
    starts.push_back(starts.back() + c.size);
  if (starts.back() != parent.size)
    return make_error(errc::invalid_argument,
                      "stream '" + parent.name + "': its chunks do not add up to its size");
  const size_t n = parent.chunks.size();

  stream_pipeline pipe(*this);
  const chunker cut(opts_.chunking);
  const size_t max = opts_.chunking.max_size;
  std::vector<uint8_t> buf(std::max<size_t>(4 * max, batch_target));
  size_t i = 0;      // the parent's next chunk
  size_t e = 0;      // the first edit not yet behind the cut
  int64_t delta = 0; // new offset - old offset after the edits before e
  bool done = false;
  while (!done && !pipe.failed()) {
    // The parent's chunks before the next edit are the new stream's too. A
    // cut depends only on the chunk's own bytes, except at the end of the
    // stream: the parent's last chunk is reused only when nothing follows it.
    const uint64_t next_edit = e < edits.size() ? edits[e].offset : UINT64_MAX;
    while (i < n && starts[i + 1] <= next_edit && !(i + 1 == n && e < edits.size())) {
      if (auto err = pipe.reuse(parent.chunks[i])) {
        pipe.fail(err);
        break;
      }
      ++i;
    }
    if (pipe.failed() || (i == n && e == edits.size())) break;

    // Cut the new stream from where the parent's chunk i starts until a cut
    // falls on one of the parent's chunk starts past the edits: from there
    // on the chunking is the parent's again.
    uint64_t base = static_cast<uint64_t>(static_cast<int64_t>(starts[i]) + delta);
    size_t begin = 0, end = 0;
    for (;;) {
      const bool eof = base + end == new_size;
      if (!eof && end - begin < max) {
        if (begin > 0) {
          std::copy(buf.begin() + static_cast<long>(begin), buf.begin() + static_cast<long>(end),
                    buf.begin());
          base += begin;
          end -= begin;
          begin = 0;
        }
        // Read no further ahead than a cut needs: the rest is the parent's.
        const size_t want = static_cast<size_t>(
            std::min<uint64_t>({buf.size() - end, max, new_size - (base + end)}));
        auto got = read(base + end, buf.data() + end, want);
        if (!got) {
          pipe.fail(got.err());
          break;
        }
        if (*got == 0 || *got > want) {
          pipe.fail(make_error(errc::invalid_argument,
                               "stream '" + name +
                                   "' does not match the stored stream with the "
                                   "edits applied (" +
                                   std::to_string(new_size) + " bytes): " +
                                   (*got == 0 ? "it ends at " + std::to_string(base + end)
                                              : std::string("it is longer")) +
                                   "; check the edit list"));
          break;
        }
        end += *got;
        continue;
      }
      if (begin == end) {
        done = true;
        break;
      }
      const size_t len = cut.next_cut(buf.data() + begin, end - begin, eof);
      if (len == 0) continue;
      pipe.add(buf.data() + begin, len);
      begin += len;
      const uint64_t at = base + begin; // the cut, in the new stream
      while (e < edits.size() &&
             at >= static_cast<uint64_t>(static_cast<int64_t>(edits[e].offset) + delta) +
                       edits[e].new_length) {
        delta +=
            static_cast<int64_t>(edits[e].new_length) - static_cast<int64_t>(edits[e].old_length);
        ++e;
      }
      if (at == new_size) {
        done = true;
        break;
      }
      // In step with the parent again? Only outside the edits' new bytes.
      if (e < edits.size() &&
          at > static_cast<uint64_t>(static_cast<int64_t>(edits[e].offset) + delta))
        continue;
      const uint64_t old_at = static_cast<uint64_t>(static_cast<int64_t>(at) - delta);
      auto it = std::lower_bound(starts.begin() + static_cast<long>(i), starts.end() - 1, old_at);
      if (it != starts.end() - 1 && *it == old_at) {
        i = static_cast<size_t>(it - starts.begin());
        break;
      }
    }
  }
  return pipe.finish(name, stats);
}

status checkpoint_store::decode_batch(const stream_ref& s, size_t from, size_t to,
                                      std::string& out) {
  std::vector<chunk_location> locs(to - from);
  uint64_t total = 0;
  {
    std::lock_guard<std::mutex> guard(index_mu_);
    for (size_t k = from; k < to; ++k) {
      auto it = index_.find(s.chunks[k].id);
      if (it == index_.end())
        return make_error(errc::integrity_error, "chunk " + s.chunks[k].id.substr(0, 16) +
                                                     " is in no index (pack missing?)");
      locs[k - from] = it->second;
      total += s.chunks[k].size;
    }
  }
  out.resize(total);
  char* dst = out.data();
  // One read per run of records that lie back to back in one pack.
  for (size_t a = 0; a < locs.size();) {
    size_t b = a + 1;
    while (b < locs.size() && locs[b].pack == locs[a].pack &&
           locs[b].offset == locs[b - 1].offset + locs[b - 1].length)
      ++b;
    const uint64_t span = locs[b - 1].offset + locs[b - 1].length - locs[a].offset;
    const std::string rel = pack_rel(locs[a].pack);
    auto bytes = env_.read_range(dir_ + "/" + rel, locs[a].offset, span);
    if (!bytes)
      return make_error(errc::integrity_error,
                        rel + ": cannot read pack (" + bytes.err().message + ")");
    for (size_t k = a; k < b; ++k) {
      const uint64_t at = locs[k].offset - locs[a].offset;
      const size_t avail =
          at >= bytes->size()
              ? 0
              : static_cast<size_t>(std::min<uint64_t>(locs[k].length, bytes->size() - at));
      const auto& ref = s.chunks[from + k];
      if (auto err = decode_record_to(bytes->data() + at, avail, locs[k], ref.id, rel, keys_.get(),
                                      dst, ref.size))
        return err;
      dst += ref.size;
    }
    a = b;
  }
  return {};
}

status checkpoint_store::read_stream(const stream_ref& s, const byte_sink& sink) {
  if (!can_read_content()) return no_key_error();
  const unsigned threads = worker_count(opts_);
  // Batches of consecutive chunks, about batch_target bytes each.
  std::vector<size_t> first;
  uint64_t acc = batch_target;
  for (size_t k = 0; k < s.chunks.size(); ++k) {
    if (acc >= batch_target) {
      first.push_back(k);
      acc = 0;
    }
    acc += s.chunks[k].size;
  }
  const size_t batches = first.size();
  first.push_back(s.chunks.size());

  struct slot {
    bool ready = false;
    status err;
    std::string data;
  };
  const size_t window = 2 * static_cast<size_t>(threads);
  std::vector<slot> slots(window);
  std::mutex mu;
  std::condition_variable room;
  size_t next = 0;      // next batch a worker takes
  size_t delivered = 0; // batches handed to the sink
  bool delivering = false, stop = false;
  status failure;

  auto worker = [&] {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      room.wait(lock, [&] { return stop || next >= batches || next < delivered + window; });
      if (stop || next >= batches) return;
      const size_t k = next++;
      // Batch k - window was delivered: its buffer is free for batch k.
      std::string out = std::move(slots[k % window].data);
      lock.unlock();
      status err = decode_batch(s, first[k], first[k + 1], out);
      lock.lock();
      slots[k % window] = {true, std::move(err), std::move(out)};
      if (delivering || k != delivered) continue;
      // This worker completed the next batch in order: it delivers it and
      // any that completed after it.
      delivering = true;
      while (!stop && delivered < batches && slots[delivered % window].ready) {
        slot& sl = slots[delivered % window];
        status e = std::move(sl.err);
        if (!e) {
          lock.unlock();
          e = sink(sl.data);
          lock.lock();
        }
        sl.ready = false;
        if (e) {
          failure = std::move(e);
          stop = true;
        }
        ++delivered;
        room.notify_all();
      }
      delivering = false;
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t)
    pool.emplace_back(worker);
  worker();
  for (auto& t : pool)
    t.join();
  return failure;
}

status checkpoint_store::restore_stream(const stream_ref& s, const std::string& path) {
  const std::string partial = path + ".partial";
  auto f = env_.new_sequential_file(partial, 0600);
  if (!f) return f.err();
  auto fail = [&](status err) {
    (*f)->close();
    env_.remove(partial);
    return err;
  };
  if (auto err = read_stream(s, [&](std::string_view b) { return (*f)->append(b); }))
    return fail(err);
  if (auto err = (*f)->sync()) return fail(err);
  if (auto err = (*f)->close()) return fail(err);
  if (auto err = env_.rename(partial, path)) {
    env_.remove(partial);
    return err;
  }
  return env_.sync_dir(parent_dir(path));
}

} // namespace dsmil
