#include "runtime/store/retention.hpp"

#include "runtime/store/manifest.hpp"

#include <algorithm>
#include <cstdlib>
#include <set>

namespace dsmil {

status set_retention_value(retention_policy& p, const std::string& key, const std::string& value) {
  char* end = nullptr;
  long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v < 0 || v > 1000000)
    return make_error(errc::invalid_argument,
                      key + " must be a whole number 0-1000000, got '" + value + "'");
  auto n = static_cast<uint32_t>(v);
  if (key == "keep_last")
    p.keep_last = n;
  else if (key == "keep_hourly")
    p.keep_hourly = n;
  else if (key == "keep_daily")
    p.keep_daily = n;
  else if (key == "keep_weekly")
    p.keep_weekly = n;
  else if (key == "max_count")
    p.max_count = n;
  else
    return make_error(errc::invalid_argument,
                      "unknown retention key '" + key +
                          "'; keys: keep_last, keep_hourly, keep_daily, keep_weekly, max_count");
  return {};
}

std::vector<std::string> retention_victims(const retention_policy& p,
                                           const std::vector<checkpoint_info>& all) {
  std::vector<const checkpoint_info*> autos; // newest first
  for (auto& c : all)
    if (c.type == checkpoint_type::automatic && !c.pinned) autos.push_back(&c);
  std::sort(autos.begin(), autos.end(),
            [](auto* a, auto* b) { return a->created_unix_ns > b->created_unix_ns; });
  std::set<const checkpoint_info*> keep;
  for (size_t i = 0; i < autos.size() && i < p.keep_last; ++i)
    keep.insert(autos[i]);
  // The newest checkpoint of each of the last N buckets that have one.
  auto by_bucket = [&](int64_t bucket_ns, uint32_t n) {
    std::set<int64_t> seen;
    for (auto* c : autos) {
      if (seen.size() >= n) break;
      if (seen.insert(c->created_unix_ns / bucket_ns).second) keep.insert(c);
    }
  };
  constexpr int64_t hour = 3600LL * 1000000000LL;
  by_bucket(hour, p.keep_hourly);
  by_bucket(24 * hour, p.keep_daily);
  by_bucket(7 * 24 * hour, p.keep_weekly);
  // The cap: of those kept, only the newest max_count.
  std::vector<const checkpoint_info*> kept;
  for (auto* c : autos)
    if (keep.count(c)) kept.push_back(c);
  for (size_t i = p.max_count; i < kept.size(); ++i)
    keep.erase(kept[i]);
  std::vector<std::string> victims;
  for (auto it = autos.rbegin(); it != autos.rend(); ++it)
    if (!keep.count(*it)) victims.push_back((*it)->id);
  return victims;
}

} // namespace dsmil
