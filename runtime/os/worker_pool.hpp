// worker_pool: the threads behind env::run_parallel and env::start_thread.
// A task runs on an idle worker, or on a new one when none is idle, so tasks
// never wait for each other (a task may itself run tasks) and the number of
// threads is the peak number of tasks at once. Workers are kept: a store that
// checkpoints every second reuses the same threads, stacks and malloc arenas
// instead of making new ones each time (which showed as resident memory
// growing with every checkpoint).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/os/env.hpp"

namespace dsmil {

class worker_pool {
public:
  worker_pool() = default;
  /// Waits for the running tasks, then stops every worker.
  ~worker_pool();
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  /// Runs `fn` on a worker; the handle's join() waits for it.
  std::unique_ptr<thread_handle> submit(std::function<void()> fn);
  /// Workers made so far.
  size_t size() const;

  /// The process-wide pool the env's defaults use.
  static worker_pool& shared();

private:
  struct task;
  void work();

  mutable std::mutex mu_; // guards what follows
  std::condition_variable wake_;
  std::deque<std::shared_ptr<task>> queue_;
  size_t idle_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

} // namespace dsmil
