#include "runtime/store/chunk_lists.hpp"

#include <unordered_map>

#include "runtime/base/coding.hpp"
#include "runtime/base/crypto.hpp"

namespace dsmil {

namespace {

constexpr size_t entry_size = 36; // raw id (32), size (fixed32)
constexpr size_t min_piece = 16, max_piece = 1024;
constexpr char op_copy = 'c', op_literal = 'l';

void put_entry(std::string& out, const chunk_ref& c) {
  std::string raw;
  from_hex(c.id, raw);
  raw.resize(32);
  out += raw;
  coding::put_fixed32(out, static_cast<uint32_t>(c.size));
}

chunk_ref get_entry(const char* p) {
  return {to_hex(reinterpret_cast<const uint8_t*>(p), 32), coding::decode_fixed32(p + 32)};
}

error damaged(const std::string& what) {
  return make_error(errc::integrity_error, "chunk list damaged: " + what);
}

} // namespace

std::vector<std::string> encode_list_pieces(const std::vector<chunk_ref>& list) {
  std::vector<std::string> pieces;
  std::string cur;
  size_t n = 0;
  for (auto& c : list) {
    put_entry(cur, c);
    ++n;
    const bool cut = c.id.size() >= 2 && c.id.compare(c.id.size() - 2, 2, "00") == 0;
    if ((cut && n >= min_piece) || n == max_piece) {
      pieces.push_back(std::move(cur));
      cur.clear();
      n = 0;
    }
  }
  if (!cur.empty()) pieces.push_back(std::move(cur));
  return pieces;
}

result<std::vector<chunk_ref>> decode_list(std::string_view bytes) {
  if (bytes.size() % entry_size != 0) return damaged("length is not a whole number of entries");
  std::vector<chunk_ref> out;
  out.reserve(bytes.size() / entry_size);
  for (size_t at = 0; at < bytes.size(); at += entry_size)
    out.push_back(get_entry(bytes.data() + at));
  return out;
}

std::string diff_lists(const std::vector<chunk_ref>& base, const std::vector<chunk_ref>& target,
                       size_t* literals) {
  std::unordered_map<std::string_view, uint32_t> first; // id -> first index in base
  first.reserve(base.size());
  for (size_t i = 0; i < base.size(); ++i)
    first.emplace(base[i].id, static_cast<uint32_t>(i));
  std::string out;
  std::vector<const chunk_ref*> lit;
  auto flush_literals = [&] {
    if (lit.empty()) return;
    out += op_literal;
    coding::put_fixed32(out, static_cast<uint32_t>(lit.size()));
    for (auto* c : lit)
      put_entry(out, *c);
    if (literals) *literals += lit.size();
    lit.clear();
  };
  if (literals) *literals = 0;
  size_t run_start = 0, run_len = 0;
  auto flush_run = [&] {
    if (run_len == 0) return;
    out += op_copy;
    coding::put_fixed32(out, static_cast<uint32_t>(run_start));
    coding::put_fixed32(out, static_cast<uint32_t>(run_len));
    run_len = 0;
  };
  for (auto& c : target) {
    const size_t next = run_start + run_len;
    if (run_len > 0 && next < base.size() && base[next].id == c.id && base[next].size == c.size) {
      ++run_len;
      continue;
    }
    auto hit = first.find(c.id);
    if (hit != first.end() && base[hit->second].size == c.size) {
      flush_run();
      flush_literals();
      run_start = hit->second;
      run_len = 1;
    } else {
      flush_run();
      lit.push_back(&c);
    }
  }
  flush_run();
  flush_literals();
  return out;
}

result<std::vector<chunk_ref>> apply_list_script(const std::vector<chunk_ref>& base,
                                                 std::string_view script) {
  std::vector<chunk_ref> out;
  out.reserve(base.size());
  size_t at = 0;
  auto need = [&](size_t n) { return script.size() - at >= n; };
  while (at < script.size()) {
    const char op = script[at++];
    if (op == op_copy) {
      if (!need(8)) return damaged("copy runs past the end of the script");
      const uint64_t from = coding::decode_fixed32(script.data() + at);
      const uint64_t count = coding::decode_fixed32(script.data() + at + 4);
      at += 8;
      if (count == 0 || from + count > base.size())
        return damaged("copy of entries the base does not have");
      out.insert(out.end(), base.begin() + static_cast<long>(from),
                 base.begin() + static_cast<long>(from + count));
    } else if (op == op_literal) {
      if (!need(4)) return damaged("literal runs past the end of the script");
      const uint64_t count = coding::decode_fixed32(script.data() + at);
      at += 4;
      if (count == 0 || !need(count * entry_size))
        return damaged("literal runs past the end of the script");
      for (uint64_t k = 0; k < count; ++k, at += entry_size)
        out.push_back(get_entry(script.data() + at));
    } else {
      return damaged("unknown operation");
    }
  }
  return out;
}

std::vector<std::string> cut_pieces(const std::string& bytes) {
  constexpr size_t piece = 32 << 10;
  std::vector<std::string> out;
  for (size_t at = 0; at < bytes.size(); at += piece)
    out.push_back(bytes.substr(at, piece));
  return out;
}

} // namespace dsmil
