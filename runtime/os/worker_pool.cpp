#include "runtime/os/worker_pool.hpp"

#include <algorithm>

namespace dsmil {

struct worker_pool::task {
  std::function<void()> fn;
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;
};

namespace {

class task_handle final : public thread_handle {
public:
  explicit task_handle(std::shared_ptr<void> keep, std::mutex& mu, std::condition_variable& cv,
                       bool& done)
      : keep_(std::move(keep)), mu_(mu), cv_(cv), done_(done) {}
  ~task_handle() override { join(); }
  void join() override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }

private:
  std::shared_ptr<void> keep_; // the task, alive until the handle goes
  std::mutex& mu_;
  std::condition_variable& cv_;
  bool& done_;
};

} // namespace

worker_pool::~worker_pool() {
  {
    std::lock_guard<std::mutex> guard(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_)
    t.join();
}

std::unique_ptr<thread_handle> worker_pool::submit(std::function<void()> fn) {
  auto t = std::make_shared<task>();
  t->fn = std::move(fn);
  {
    std::lock_guard<std::mutex> guard(mu_);
    queue_.push_back(t);
    // Every queued task has an idle worker to take it, or gets a new one,
    // counted idle from now: it will take a task as soon as it runs.
    if (queue_.size() > idle_) {
      ++idle_;
      threads_.emplace_back([this] { work(); });
    }
  }
  wake_.notify_one();
  return std::make_unique<task_handle>(t, t->mu, t->done_cv, t->done);
}

size_t worker_pool::size() const {
  std::lock_guard<std::mutex> guard(mu_);
  return threads_.size();
}

void worker_pool::work() {
  std::unique_lock<std::mutex> lock(mu_); // counted idle by submit()
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return; // stopping
    --idle_;
    auto t = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    t->fn();
    t->fn = nullptr; // what it captured goes now, not when the handle does
    // Idle again before the task is seen as done: a caller that submits
    // its next task right after join() finds this worker, not a new one.
    lock.lock();
    ++idle_;
    lock.unlock();
    {
      std::lock_guard<std::mutex> guard(t->mu);
      t->done = true;
    }
    t->done_cv.notify_all();
    lock.lock();
  }
}

worker_pool& worker_pool::shared() {
  static worker_pool pool;
  return pool;
}

void env::run_parallel(size_t n, const std::function<void(size_t)>& fn) {
  std::vector<std::unique_ptr<thread_handle>> others;
  for (size_t i = 1; i < n; ++i)
    others.push_back(start_thread([&fn, i] { fn(i); }));
  if (n > 0) fn(0);
  for (auto& t : others)
    t->join();
}

std::unique_ptr<thread_handle> env::start_thread(std::function<void()> fn) {
  return worker_pool::shared().submit(std::move(fn));
}

unsigned env::cpu_count() {
  return std::max(1u, std::thread::hardware_concurrency());
}

} // namespace dsmil
