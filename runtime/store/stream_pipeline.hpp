// The store's streaming pipeline (internal to runtime/store/). The calling
// thread reads the stream and cuts it into content-defined chunks, handed over
// in batches of about 1 MiB; worker threads hash, dedup, compress, CRC and
// append new records to a pack of their own; full packs are sealed (fsync,
// rename, index) on a sealer thread, so the disk's work overlaps the CPU's.
// Queues are bounded: memory is O(threads x (batch + max chunk)) whatever the
// stream's length.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <thread>

#include "runtime/base/bounded_queue.hpp"
#include "runtime/store/store.hpp"

namespace dsmil {
namespace stream_detail {

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

inline unsigned worker_count(env& e, const store_options& o) {
  return o.threads > 0 ? o.threads : e.cpu_count();
}

} // namespace stream_detail

// Workers and sealer of one write_stream / write_stream_changes call. The
// producer (the calling thread) adds chunks and reused chunk refs in stream
// order; finish() joins everything and returns the stream's chunk list.
class checkpoint_store::stream_pipeline {
public:
  explicit stream_pipeline(checkpoint_store& s, held_records* hold = nullptr)
      : s_(s), hold_(hold), threads_(stream_detail::worker_count(s.env_, s.opts_)),
        jobs_(2 * threads_), spare_(4 * threads_) {
    for (unsigned i = 0; i < stream_detail::sealers; ++i)
      sealers_.push_back(s_.env_.start_thread([this] { seal(); }));
    for (unsigned i = 0; i < threads_; ++i)
      pool_.push_back(s_.env_.start_thread([this] { work(); }));
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
    if (batch_.data.size() >= stream_detail::batch_target) flush();
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

  /// Where the stream added since the last end_stream() ends: finish_all()
  /// returns one stream_ref per end_stream().
  void end_stream(const std::string& name) { bounds_.push_back({name, next_index_, bytes_}); }

  result<std::vector<stream_ref>> finish_all(stream_stats* stats) {
    flush();
    join();
    if (failed_) return failure_;
    st_.bytes = bytes_;
    st_.chunks = next_index_;
    if (stats) *stats = st_;
    std::vector<stream_ref> out;
    size_t first = 0;
    uint64_t at = 0;
    for (auto& b : bounds_) {
      out.push_back(stream_ref{b.name, b.bytes_end - at,
                               std::vector<chunk_ref>(refs_.begin() + static_cast<long>(first),
                                                      refs_.begin() + static_cast<long>(b.end))});
      first = b.end;
      at = b.bytes_end;
    }
    return out;
  }

  result<stream_ref> finish(const std::string& name, stream_stats* stats) {
    end_stream(name);
    auto all = finish_all(stats);
    if (!all) return all.err();
    return std::move(all->front());
  }

private:
  void flush() {
    if (batch_.lengths.empty()) return;
    jobs_.push(std::move(batch_));
    batch_ = stream_detail::chunk_batch{};
  }

  void join() {
    jobs_.close();
    for (auto& t : pool_)
      t->join();
    full_packs_.close();
    for (auto& t : sealers_)
      t->join();
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
        if (hold(hex[k], record)) {
          ++st.new_chunks;
          st.new_bytes += plain.size();
          st.stored_bytes += record.size();
          continue;
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

  // Keeps a record for create() while the held ones fit.
  bool hold(const std::string& id_hex, const std::string& record) {
    if (hold_ == nullptr) return false;
    std::lock_guard<std::mutex> guard(mu_);
    if (hold_->bytes + record.size() > hold_->limit) return false;
    hold_->records.emplace_back(id_hex, record);
    hold_->bytes += record.size();
    return true;
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
  held_records* hold_; ///< guarded by mu_
  const unsigned threads_;
  bounded_queue<stream_detail::chunk_batch> jobs_;
  bounded_queue<std::string> spare_; // batch buffers back to the producer
  bounded_queue<std::unique_ptr<open_pack>> full_packs_{stream_detail::sealers};
  std::vector<std::unique_ptr<thread_handle>> sealers_;
  std::vector<std::unique_ptr<thread_handle>> pool_;
  bool joined_ = false;
  std::atomic<bool> failed_{false};

  // Producer only.
  struct stream_bound {
    std::string name;
    size_t end = 0;         // chunk index past its last
    uint64_t bytes_end = 0; // bytes of all streams up to its end
  };
  std::vector<stream_bound> bounds_;
  stream_detail::chunk_batch batch_;
  size_t next_index_ = 0;
  uint64_t bytes_ = 0;

  std::mutex mu_; // guards what follows
  error failure_;
  std::vector<chunk_ref> refs_;
  std::set<std::string> claimed_; // new chunks some worker is storing in this stream
  stream_stats st_;
};

} // namespace dsmil
