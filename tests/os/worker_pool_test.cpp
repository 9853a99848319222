#include <atomic>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include "runtime/os/worker_pool.hpp"

using namespace dsmil;

TEST_CASE("a worker pool reuses its threads: as many as ever ran at once, no more") {
  worker_pool pool;
  std::mutex mu;
  std::set<std::thread::id> seen;
  for (int round = 0; round < 50; ++round) {
    std::vector<std::unique_ptr<thread_handle>> running;
    for (int i = 0; i < 3; ++i)
      running.push_back(pool.submit([&] {
        std::lock_guard<std::mutex> guard(mu);
        seen.insert(std::this_thread::get_id());
      }));
    for (auto& t : running)
      t->join();
  }
  CHECK(pool.size() <= 3);
  CHECK(seen.size() <= 3);
}

TEST_CASE("tasks never wait for each other: a task that waits for another it started finishes") {
  worker_pool pool;
  std::atomic<int> done{0};
  auto outer = pool.submit([&] {
    std::atomic<bool> go{false};
    auto inner = pool.submit([&] {
      go = true;
      ++done;
    });
    inner->join(); // would deadlock on a fixed pool of one
    CHECK(go.load());
    ++done;
  });
  outer->join();
  CHECK(done == 2);
}

TEST_CASE("env::run_parallel runs every index once, on the pool") {
  std::atomic<int> sum{0};
  env::posix().run_parallel(8, [&](size_t i) { sum += static_cast<int>(i); });
  CHECK(sum == 28);
}
