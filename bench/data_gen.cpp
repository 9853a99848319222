#include "bench/data_gen.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "runtime/devices/sim_driver.hpp"

namespace dsmil::bench {

namespace {

constexpr size_t block = 1 << 20;
constexpr size_t region = 64 * 1024;

void fill_random(char* p, size_t n, uint64_t& s) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = splitmix64(s);
    std::memcpy(p + i, &v, 8);
  }
  for (; i < n; ++i)
    p[i] = static_cast<char>(splitmix64(s));
}

const char* const words[] = {"checkpoint", "rollback", "device", "register", "enabled",
                             "security",   "level",    "agent",  "workflow", "RUNNING",
                             "RECOVERING", "0x8031",   "group",  "thermal",  "config",
                             "the",        "a",        "of",     "and",      "to"};

void fill_text(char* p, size_t n, uint64_t& s) {
  size_t i = 0;
  while (i < n) {
    const char* w = words[splitmix64(s) % 20];
    size_t len = std::strlen(w);
    for (size_t k = 0; k < len && i < n; ++k)
      p[i++] = w[k];
    if (i < n) p[i++] = (splitmix64(s) % 10 == 0) ? '\n' : ' ';
  }
}

// Structured binary: little counters and flags with some noise, like a heap image.
void fill_binary(char* p, size_t n, uint64_t& s) {
  uint32_t counter = static_cast<uint32_t>(splitmix64(s));
  for (size_t i = 0; i + 16 <= n; i += 16) {
    uint64_t r = splitmix64(s);
    uint32_t rec[4] = {counter++, static_cast<uint32_t>(r & 0xFF), 0,
                       static_cast<uint32_t>((r >> 8) & 0xFFFF)};
    std::memcpy(p + i, rec, 16);
  }
}

void fill_rows(char* p, size_t n, uint64_t& s, uint64_t& row) {
  static const char* status[] = {"pending", "active", "settled", "failed"};
  size_t i = 0;
  char line[160];
  while (i < n) {
    uint64_t r = splitmix64(s);
    int len = std::snprintf(
        line, sizeof(line), "%llu|account-%05llu|%llu.%02llu|2026-11-%02llu|%s\n",
        static_cast<unsigned long long>(row++), static_cast<unsigned long long>(r % 50000),
        static_cast<unsigned long long>((r >> 16) % 100000),
        static_cast<unsigned long long>((r >> 40) % 100),
        static_cast<unsigned long long>(1 + (r >> 48) % 28), status[(r >> 60) % 4]);
    size_t take = std::min(static_cast<size_t>(len), n - i);
    std::memcpy(p + i, line, take);
    i += take;
  }
}

} // namespace

status generate(const std::string& path, uint64_t size, data_kind kind, uint64_t seed) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return make_error(errc::io_error, "cannot create " + path);
  std::vector<char> buf(block);
  uint64_t s = seed, row = 1;
  for (uint64_t done = 0; done < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(block, size - done));
    switch (kind) {
    case data_kind::random:
      fill_random(buf.data(), n, s);
      break;
    case data_kind::rows:
      fill_rows(buf.data(), n, s, row);
      break;
    case data_kind::mixed:
      // 1 MiB: half text, 3/8 structured binary, 1/8 noise: about 3:1 with deflate.
      fill_text(buf.data(), n / 2, s);
      fill_binary(buf.data() + n / 2, n * 3 / 8, s);
      fill_random(buf.data() + n / 2 + n * 3 / 8, n - n / 2 - n * 3 / 8, s);
      break;
    }
    if (std::fwrite(buf.data(), 1, n, f) != n) {
      std::fclose(f);
      return make_error(errc::io_error, "cannot write " + path);
    }
    done += n;
  }
  if (std::fclose(f) != 0) return make_error(errc::io_error, "cannot write " + path);
  return {};
}

result<uint64_t> edit_scattered(const std::string& from, const std::string& to, double fraction,
                                uint64_t seed, std::vector<stream_edit>* edits) {
  FILE* in = std::fopen(from.c_str(), "rb");
  if (in == nullptr) return make_error(errc::io_error, "cannot read " + from);
  std::fseek(in, 0, SEEK_END);
  uint64_t size = static_cast<uint64_t>(std::ftell(in));
  std::fseek(in, 0, SEEK_SET);
  uint64_t regions = std::max<uint64_t>(1, static_cast<uint64_t>(size * fraction / region));
  std::vector<uint64_t> at;
  uint64_t s = seed;
  for (uint64_t i = 0; i < regions; ++i)
    at.push_back(splitmix64(s) % (size > region ? size - region : 1));
  std::sort(at.begin(), at.end());
  FILE* out = std::fopen(to.c_str(), "wb");
  if (out == nullptr) {
    std::fclose(in);
    return make_error(errc::io_error, "cannot create " + to);
  }
  std::vector<char> buf(block), noise(region);
  uint64_t pos = 0, changed = 0;
  auto copy_until = [&](uint64_t end) {
    while (pos < end) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(block, end - pos));
      n = std::fread(buf.data(), 1, n, in);
      if (n == 0) return;
      std::fwrite(buf.data(), 1, n, out);
      pos += n;
    }
  };
  for (size_t i = 0; i < at.size(); ++i) {
    if (at[i] < pos) continue; // overlapping regions: skip
    copy_until(at[i]);
    fill_random(noise.data(), region, s);
    std::fwrite(noise.data(), 1, region, out);
    changed += region;
    if (edits) edits->push_back({at[i], i % 2 == 0 ? region : 0, region});
    if (i % 2 == 0) { // overwrite: skip the original bytes
      std::fseek(in, static_cast<long>(region), SEEK_CUR);
      pos += region;
    } // else: insertion, the original bytes follow
  }
  copy_until(size);
  std::fclose(in);
  if (std::fclose(out) != 0) return make_error(errc::io_error, "cannot write " + to);
  return changed;
}

} // namespace dsmil::bench
