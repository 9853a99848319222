#include "runtime/pg/row_delta.hpp"

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "runtime/components/component.hpp"

namespace dsmil {

namespace {

// Chunks [first, last] of one list (first may be -1, last may be its size:
// no chunk there, the stream's start or end).
struct span {
  long first, last;
};

// A run of chunks that differ, with the shared chunk before and after it.
struct window {
  span from, to;
};

// Pairs of equal chunks, increasing in both lists (a greedy common
// subsequence: each chunk of `to` takes the first equal chunk of `from`
// after the last pair).
std::vector<std::pair<long, long>> anchors(const stream_ref& from, const stream_ref& to) {
  std::unordered_map<std::string_view, std::vector<long>> at;
  at.reserve(from.chunks.size());
  for (size_t i = 0; i < from.chunks.size(); ++i)
    at[from.chunks[i].id].push_back(static_cast<long>(i));
  std::vector<std::pair<long, long>> out;
  long last = -1;
  for (size_t j = 0; j < to.chunks.size(); ++j) {
    auto hit = at.find(to.chunks[j].id);
    if (hit == at.end()) continue;
    auto next = std::upper_bound(hit->second.begin(), hit->second.end(), last);
    if (next == hit->second.end()) continue;
    last = *next;
    out.emplace_back(last, static_cast<long>(j));
  }
  return out;
}

// The chunks of `s` the windows need, as one stream_ref, and where each
// window's bytes begin in it.
stream_ref gather(const stream_ref& s, const std::vector<window>& ws, bool from,
                  std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  stream_ref out{s.name, 0, {}};
  const long n = static_cast<long>(s.chunks.size());
  for (auto& w : ws) {
    const span& sp = from ? w.from : w.to;
    const uint64_t begin = out.size;
    for (long i = std::max(sp.first, 0L); i <= std::min(sp.last, n - 1); ++i) {
      out.chunks.push_back(s.chunks[static_cast<size_t>(i)]);
      out.size += s.chunks[static_cast<size_t>(i)].size;
    }
    ranges.emplace_back(begin, out.size);
  }
  return out;
}

// The whole rows of a window's bytes: from after the last line end in the
// leading shared chunk (`lead` bytes; none: the stream's start) through the
// first line end in the trailing one (`trail` bytes; none: the end).
// nullopt when a shared chunk holds no line end.
std::optional<std::string_view> whole_rows(std::string_view b, uint64_t lead, uint64_t trail) {
  size_t begin = 0;
  if (lead > 0) {
    auto nl = b.substr(0, lead).rfind('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    begin = nl + 1;
  }
  size_t end = b.size();
  if (trail > 0) {
    auto nl = b.find('\n', b.size() - trail);
    if (nl == std::string_view::npos) return std::nullopt;
    end = nl + 1;
  }
  return b.substr(begin, end - begin);
}

void lines_of(std::string_view rows, std::vector<std::string_view>& out) {
  for (size_t at = 0; at < rows.size();) {
    auto nl = rows.find('\n', at);
    const size_t end = nl == std::string_view::npos ? rows.size() : nl + 1;
    out.push_back(rows.substr(at, end - at));
    at = end;
  }
}

} // namespace

result<std::optional<row_delta>> rows_between(stream_port& port, const stream_ref& from,
                                              const stream_ref& to, uint64_t max_read) {
  const long nf = static_cast<long>(from.chunks.size()), nt = static_cast<long>(to.chunks.size());
  auto pairs = anchors(from, to);
  pairs.emplace_back(nf, nt); // the ends, as if shared
  auto size_at = [](const stream_ref& s, long i) -> uint64_t {
    return i >= 0 && i < static_cast<long>(s.chunks.size()) ? s.chunks[static_cast<size_t>(i)].size
                                                            : 0;
  };
  std::vector<window> ws;
  long pf = -1, pt = -1;
  uint64_t to_read = 0;
  for (auto [f, t] : pairs) {
    if (f > pf + 1 || t > pt + 1) {
      ws.push_back({{pf, f}, {pt, t}});
      for (long i = pf; i <= f; ++i)
        to_read += size_at(from, i);
      for (long i = pt; i <= t; ++i)
        to_read += size_at(to, i);
    }
    pf = f;
    pt = t;
  }
  if (to_read > max_read) return std::optional<row_delta>{};
  row_delta d;
  d.windows = ws.size();
  if (ws.empty()) return std::optional<row_delta>{std::move(d)};

  std::vector<std::pair<uint64_t, uint64_t>> rf, rt;
  auto sf = gather(from, ws, true, rf);
  auto st = gather(to, ws, false, rt);
  std::string bf, bt;
  bf.reserve(sf.size);
  bt.reserve(st.size);
  auto into = [](std::string& s) {
    return [&s](std::string_view b) {
      s += b;
      return status{};
    };
  };
  if (auto err = port.read(sf, into(bf))) return err;
  if (auto err = port.read(st, into(bt))) return err;
  d.read_bytes = bf.size() + bt.size();

  std::vector<std::string_view> lf, lt;
  std::unordered_map<std::string_view, long> count;
  for (size_t k = 0; k < ws.size(); ++k) {
    auto& w = ws[k];
    // The shared chunks on each side are the same bytes in both lists, so
    // both sides begin and end on the same row.
    auto rows_f = whole_rows(std::string_view(bf).substr(rf[k].first, rf[k].second - rf[k].first),
                             size_at(from, w.from.first), size_at(from, w.from.last));
    auto rows_t = whole_rows(std::string_view(bt).substr(rt[k].first, rt[k].second - rt[k].first),
                             size_at(to, w.to.first), size_at(to, w.to.last));
    if (!rows_f || !rows_t) return std::optional<row_delta>{};
    lf.clear();
    lt.clear();
    lines_of(*rows_f, lf);
    lines_of(*rows_t, lt);
    count.clear();
    for (auto l : lf)
      ++count[l];
    for (auto l : lt)
      --count[l];
    // Rows are unique (a key, or whole rows compared), so a line in both
    // is a row unchanged.
    for (auto l : lf)
      if (auto it = count.find(l); it->second > 0) {
        --it->second;
        d.old_rows += l;
        ++d.old_count;
      }
    for (auto l : lt)
      if (auto it = count.find(l); it->second < 0) {
        ++it->second;
        d.new_rows += l;
        ++d.new_count;
      }
  }
  return std::optional<row_delta>{std::move(d)};
}

} // namespace dsmil
