// Reading a stream back: workers read each batch's records with one pread per
// run of adjacent records, decode them straight into the batch's buffer, and
// whichever worker completes the next batch in stream order hands it to the
// sink.
#include "runtime/store/layout.hpp"
#include "runtime/store/stream_pipeline.hpp"

namespace dsmil {

using namespace stream_detail;

status checkpoint_store::decode_batch(const stream_ref& s, size_t from, size_t to, char* dst) {
  std::vector<chunk_location> locs(to - from);
  {
    std::lock_guard<std::mutex> guard(index_mu_);
    for (size_t k = from; k < to; ++k) {
      auto it = index_.find(s.chunks[k].id);
      if (it == index_.end())
        return make_error(errc::integrity_error, "chunk " + s.chunks[k].id.substr(0, 16) +
                                                     " is in no index (pack missing?)");
      locs[k - from] = it->second;
    }
  }
  // One read per run of records that lie back to back in one pack.
  for (size_t a = 0; a < locs.size();) {
    size_t b = a + 1;
    while (b < locs.size() && locs[b].pack == locs[a].pack &&
           locs[b].offset == locs[b - 1].offset + locs[b - 1].length)
      ++b;
    const uint64_t span = locs[b - 1].offset + locs[b - 1].length - locs[a].offset;
    const std::string rel = layout::pack(locs[a].pack);
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

status checkpoint_store::read_stream_locked(const stream_ref& s, const byte_sink& sink) {
  if (!can_read_content()) return no_key_error();
  const unsigned threads = worker_count(env_, opts_);
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
      uint64_t total = 0;
      for (size_t c = first[k]; c < first[k + 1]; ++c)
        total += s.chunks[c].size;
      out.resize(total);
      status err = decode_batch(s, first[k], first[k + 1], out.data());
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
  env_.run_parallel(threads, [&](size_t) { worker(); });
  return failure;
}

result<std::vector<std::string>>
checkpoint_store::read_streams(const std::vector<const stream_ref*>& streams) {
  std::shared_lock<std::shared_mutex> files(files_mu_);
  if (!can_read_content()) return no_key_error();
  std::vector<std::string> out(streams.size());
  std::vector<status> errs(streams.size());
  std::atomic<size_t> next{0};
  const auto threads = std::min<size_t>(worker_count(env_, opts_), streams.size());
  env_.run_parallel(threads, [&](size_t) {
    for (size_t i = next++; i < streams.size(); i = next++) {
      const stream_ref& s = *streams[i];
      out[i].resize(s.size);
      // In runs of about batch_target bytes: one read buffer at a time.
      uint64_t at = 0;
      for (size_t from = 0; from < s.chunks.size() && !errs[i];) {
        size_t to = from;
        uint64_t len = 0;
        while (to < s.chunks.size() && (to == from || len < batch_target))
          len += s.chunks[to++].size;
        if (at + len > s.size) {
          errs[i] = make_error(errc::integrity_error,
                               "stream '" + s.name + "': its chunks do not add up to its size");
          break;
        }
        errs[i] = decode_batch(s, from, to, out[i].data() + at);
        at += len;
        from = to;
      }
      if (!errs[i] && at != s.size)
        errs[i] = make_error(errc::integrity_error,
                             "stream '" + s.name + "': its chunks do not add up to its size");
    }
  });
  for (auto& e : errs)
    if (e) return e;
  return out;
}

status checkpoint_store::restore_stream(const stream_ref& s, const std::string& path) {
  std::shared_lock<std::shared_mutex> files(files_mu_);
  const std::string partial = path + ".partial";
  auto f = env_.new_sequential_file(partial, 0600);
  if (!f) return f.err();
  auto fail = [&](status err) {
    (*f)->close();
    env_.remove(partial);
    return err;
  };
  if (auto err = read_stream_locked(s, [&](std::string_view b) { return (*f)->append(b); }))
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
