// The store's streaming pipeline: content-defined chunking on the calling
// thread, hashing, dedup, compression and CRC on worker threads, packs sealed
// by whichever worker fills them. Queues are bounded, so memory is
// O(threads x max chunk + pack target) whatever the stream's length.
#include <atomic>
#include <set>
#include <thread>

#include "runtime/bounded_queue.hpp"
#include "runtime/store.hpp"

namespace dsmil {

status checkpoint_store::seal_pack(const pack_builder& pack) {
  const std::string name = sha256_hex(pack.bytes());
  const std::string sub = dir_ + "/packs/" + name.substr(0, 2);
  if (!env_.exists(sub)) {
    if (auto err = env_.create_dirs(sub)) return err;
    if (auto err = env_.sync_dir(dir_ + "/packs")) {
      std::lock_guard<std::mutex> guard(sticky_mu_);
      if (!sticky_) sticky_ = err;
      return err;
    }
  }
  if (auto err = write(sub + "/" + name + ".pack", pack.bytes())) return err;
  const std::string idx_path = dir_ + "/index/" + name + ".idx";
  const std::string idx = pack.index_text();
  if (auto err = write(idx_path, idx)) return err;
  // Only now, with pack and index durable, may a manifest name these chunks.
  std::map<std::string, chunk_location> entries;
  if (auto err = parse_index(idx, name, idx_path, entries)) return err;
  std::lock_guard<std::mutex> guard(index_mu_);
  index_.insert(entries.begin(), entries.end());
  return {};
}

namespace {

struct chunk_job {
  size_t index = 0;
  std::string data;
};

} // namespace

result<stream_ref> checkpoint_store::write_stream(const std::string& name, const byte_source& src,
                                                  stream_stats* stats) {
  {
    std::lock_guard<std::mutex> guard(sticky_mu_);
    if (sticky_)
      return make_error(errc::io_error, "the store refuses writes after an earlier failure (" +
                                            sticky_.message + "); restart to reopen it");
  }
  const unsigned threads =
      opts_.threads > 0 ? opts_.threads : std::max(1u, std::thread::hardware_concurrency());
  const chunker cut(opts_.chunking);
  bounded_queue<chunk_job> jobs(2 * threads);

  std::mutex mu; // guards everything below that workers share
  std::vector<chunk_ref> refs;
  std::set<std::string> claimed; // new chunks some worker is storing in this stream
  auto current = std::make_unique<pack_builder>();
  error failure;
  stream_stats st;
  std::atomic<bool> failed{false};

  auto fail = [&](const error& e) {
    std::lock_guard<std::mutex> guard(mu);
    if (!failure) failure = e;
    failed = true;
  };

  auto worker = [&] {
    simd::deflater deflate(opts_.deflate_level);
    while (auto job = jobs.pop()) {
      if (failed) continue; // drain
      const digest d = sha256(job->data);
      const std::string id = to_hex(d);
      bool is_new;
      {
        std::lock_guard<std::mutex> guard(index_mu_);
        is_new = index_.count(id) == 0;
      }
      std::unique_ptr<pack_builder> full;
      {
        std::lock_guard<std::mutex> guard(mu);
        if (refs.size() <= job->index) refs.resize(job->index + 1);
        refs[job->index] = {id, job->data.size()};
        is_new = is_new && claimed.insert(id).second;
      }
      if (!is_new) continue;
      std::string record = encode_record(d, job->data, &deflate);
      {
        std::lock_guard<std::mutex> guard(mu);
        ++st.new_chunks;
        st.new_bytes += job->data.size();
        st.stored_bytes += record.size();
        current->append(d, record);
        if (current->size() >= opts_.pack_target_bytes) {
          full = std::move(current);
          current = std::make_unique<pack_builder>();
        }
      }
      if (full)
        if (auto err = seal_pack(*full)) fail(err);
    }
  };

  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i)
    pool.emplace_back(worker);

  // Read and cut on this thread: a window of at least max_size bytes ahead.
  const size_t max = opts_.chunking.max_size;
  std::vector<uint8_t> buf(2 * max);
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
    if (!jobs.push({index++, std::string(reinterpret_cast<const char*>(buf.data() + begin), len)}))
      break;
    begin += len;
  }
  jobs.close();
  for (auto& t : pool)
    t.join();
  if (!failed && !current->empty())
    if (auto err = seal_pack(*current)) fail(err);
  if (failed) return failure;
  if (stats) *stats = st;
  return stream_ref{name, st.bytes, std::move(refs)};
}

status checkpoint_store::read_stream(const stream_ref& s, const byte_sink& sink) {
  // Decode ahead on worker threads, hand chunks to the sink in order.
  const unsigned threads =
      opts_.threads > 0 ? opts_.threads : std::max(1u, std::thread::hardware_concurrency());
  const size_t window = 2 * threads;
  std::vector<std::string> slots(s.chunks.size() < window ? s.chunks.size() : window);
  std::vector<error> errors(slots.size());
  size_t next = 0;
  while (next < s.chunks.size()) {
    size_t n = std::min(window, s.chunks.size() - next);
    std::vector<std::thread> pool;
    std::atomic<size_t> cursor{0};
    for (unsigned t = 0; t < threads && t < n; ++t)
      pool.emplace_back([&] {
        for (size_t k; (k = cursor++) < n;) {
          auto r = read_chunk(s.chunks[next + k].id);
          if (r) slots[k] = std::move(*r);
          else errors[k] = r.err();
        }
      });
    for (auto& t : pool)
      t.join();
    for (size_t k = 0; k < n; ++k) {
      if (errors[k]) return errors[k];
      if (auto err = sink(slots[k])) return err;
    }
    next += n;
  }
  return {};
}

} // namespace dsmil
