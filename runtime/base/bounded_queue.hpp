// A blocking queue with a capacity: producers wait when it is full, so memory
// stays bounded whatever the input size. For worker threads, not for actors.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace dsmil {

template <class T> class bounded_queue {
public:
  explicit bounded_queue(size_t capacity) : capacity_(capacity) {}

  /// Blocks while full. Returns false (dropping `v`) once closed.
  bool push(T v) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(v));
    not_empty_.notify_one();
    return true;
  }

  /// Pushes unless full or closed; false (dropping `v`) otherwise.
  bool try_push(T v) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || items_.size() >= capacity_) return false;
    items_.push_back(std::move(v));
    not_empty_.notify_one();
    return true;
  }
  /// Blocks while empty; nullopt once closed and drained.
  std::optional<T> pop() {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    T v = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return v;
  }

  /// An item if one is there, without waiting.
  std::optional<T> try_pop() {
    std::lock_guard<std::mutex> lock(mu_);
    if (items_.empty()) return std::nullopt;
    T v = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return v;
  }

  /// No more pushes; pops drain what is left.
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

private:
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<T> items_;
  size_t capacity_;
  bool closed_ = false;
};

} // namespace dsmil
