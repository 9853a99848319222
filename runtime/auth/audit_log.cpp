#include "runtime/auth/audit_log.hpp"

#include <nlohmann/json.hpp>

#include "runtime/base/crypto.hpp"
#include "runtime/os/env.hpp"
#include "runtime/store/manifest.hpp"

namespace dsmil {

namespace {

using nlohmann::json;

const std::string zero_hash(64, '0');

json body_of(const audit_record& r, const std::string& prev) {
  return {{"seq", r.seq},         {"at", r.at},         {"identity", r.identity}, {"role", r.role},
          {"command", r.command}, {"target", r.target}, {"outcome", r.outcome},   {"prev", prev}};
}

std::string hash_of(const json& body) {
  return sha256_hex(body.at("prev").get<std::string>() + body.dump());
}

struct walked {
  std::vector<audit_record> records;
  std::vector<std::string> hashes; ///< hashes[i] of records[i]
  uint64_t first_bad = 0;
  std::string problem;
};

// Reads the chain front to back, stopping at the first record that is
// wrong.
walked walk(const std::string& text) {
  walked w;
  std::string prev = zero_hash;
  size_t pos = 0;
  uint64_t line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    const uint64_t expect = w.records.size() + 1;
    auto bad = [&](const std::string& why) {
      w.first_bad = expect;
      w.problem =
          "record " + std::to_string(expect) + " (line " + std::to_string(line_no) + "): " + why;
    };
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("hash") || !j["hash"].is_string() || !j.contains("seq") ||
        !j["seq"].is_number_unsigned() || !j.contains("prev") || !j["prev"].is_string()) {
      bad("not a record of the audit log (edited or damaged)");
      return w;
    }
    const std::string hash = j["hash"];
    j.erase("hash");
    if (j["seq"].get<uint64_t>() != expect) {
      bad("its sequence number is " + std::to_string(j["seq"].get<uint64_t>()) +
          " (a record before it was removed or reordered)");
      return w;
    }
    if (j["prev"] != prev) {
      bad("it does not follow the record before it (a record was removed or replaced)");
      return w;
    }
    if (hash_of(j) != hash) {
      bad("its contents do not match its hash (the record was edited)");
      return w;
    }
    audit_record r;
    r.seq = expect;
    r.at = j.value("at", "");
    r.identity = j.value("identity", "");
    r.role = j.value("role", "");
    r.command = j.value("command", "");
    r.target = j.value("target", "");
    r.outcome = j.value("outcome", "");
    w.records.push_back(std::move(r));
    w.hashes.push_back(hash);
    prev = hash;
  }
  return w;
}

} // namespace

std::string audit_log::head_bytes(uint64_t seq, const std::string& hash) const {
  return "dsmil-audit-head\n" + std::to_string(seq) + "\n" + hash;
}

result<std::unique_ptr<audit_log>> audit_log::open(env& e, const std::string& data_dir,
                                                   sign_fn sign, check_fn check,
                                                   std::function<void(const std::string&)> warn) {
  std::unique_ptr<audit_log> a(new audit_log(e));
  a->dir_ = data_dir + "/" + audit_layout::dir;
  a->log_path_ = data_dir + "/" + audit_layout::log;
  a->head_path_ = data_dir + "/" + audit_layout::head;
  a->sign_ = std::move(sign);
  a->check_ = std::move(check);
  if (auto err = e.create_dirs(a->dir_)) return err;
  auto text = e.exists(a->log_path_) ? e.read_file(a->log_path_) : result<std::string>("");
  if (!text) return text.err();
  auto w = walk(*text);
  a->seq_ = w.records.size();
  a->last_hash_ = w.hashes.empty() ? zero_hash : w.hashes.back();
  auto c = a->verify();
  if (!c.valid) {
    // A record appended just before the node stopped, whose head was not
    // signed yet: the chain is whole, the head is one behind.
    auto head = e.read_file(a->head_path_);
    auto h = head ? json::parse(*head, nullptr, false) : json();
    const uint64_t signed_seq = h.is_object() ? h.value("seq", uint64_t{0}) : 0;
    if (w.problem.empty() && a->seq_ == signed_seq + 1 &&
        (signed_seq == 0 ? true : h.value("hash", "") == w.hashes[signed_seq - 1]) &&
        (head || signed_seq == 0)) {
      if (warn)
        warn("audit log " + a->log_path_ + ": record " + std::to_string(a->seq_) +
             " was appended as the node stopped; signing the chain head again");
      std::lock_guard<std::mutex> lock(a->mu_);
      auto sig = a->sign_(a->head_bytes(a->seq_, a->last_hash_));
      if (!sig) return sig.err();
      json nh = {{"seq", a->seq_},
                 {"hash", a->last_hash_},
                 {"signature", to_hex(reinterpret_cast<const uint8_t*>(sig->data()), sig->size())}};
      if (auto err = write_durable(e, a->dir_, a->head_path_, nh.dump() + "\n")) return err;
    } else {
      a->problem_ = c.problem;
      if (warn)
        warn("audit log " + a->log_path_ + " is damaged: " + c.problem +
             "; the node keeps appending. Keep a copy and run 'dsmilctl audit verify'");
    }
  }
  return a;
}

status audit_log::append(audit_record r) {
  std::lock_guard<std::mutex> lock(mu_);
  r.seq = seq_ + 1;
  if (r.at.empty()) r.at = format_time(env_.now_unix_ns());
  auto body = body_of(r, last_hash_);
  const std::string hash = hash_of(body);
  body["hash"] = hash;
  auto f = env_.new_appendable_file(log_path_);
  if (!f) return f.err();
  if (auto err = (*f)->append(body.dump() + "\n")) return err;
  if (auto err = (*f)->sync()) return err;
  if (auto err = (*f)->close()) return err;
  seq_ = r.seq;
  last_hash_ = hash;
  auto sig = sign_(head_bytes(seq_, last_hash_));
  if (!sig) return sig.err();
  json head = {{"seq", seq_},
               {"hash", last_hash_},
               {"signature", to_hex(reinterpret_cast<const uint8_t*>(sig->data()), sig->size())}};
  return write_durable(env_, dir_, head_path_, head.dump() + "\n");
}

result<std::vector<audit_record>> audit_log::read(int64_t since_ns) {
  std::string text;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!env_.exists(log_path_)) return std::vector<audit_record>{};
    auto t = env_.read_file(log_path_);
    if (!t) return t.err();
    text = std::move(*t);
  }
  auto w = walk(text);
  if (since_ns <= 0) return std::move(w.records);
  const std::string since = format_time(since_ns);
  std::vector<audit_record> out;
  for (auto& r : w.records)
    if (r.at >= since) out.push_back(std::move(r));
  return out;
}

audit_check audit_log::verify() {
  std::string text, head;
  bool have_head = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (env_.exists(log_path_)) {
      auto t = env_.read_file(log_path_);
      if (!t) return {false, 0, 0, t.err().message};
      text = std::move(*t);
    }
    if (env_.exists(head_path_)) {
      auto h = env_.read_file(head_path_);
      if (!h) return {false, 0, 0, h.err().message};
      head = std::move(*h);
      have_head = true;
    }
  }
  auto w = walk(text);
  audit_check c;
  c.records = w.records.size();
  if (!w.problem.empty()) return {false, c.records, w.first_bad, w.problem};
  if (!have_head) {
    if (c.records == 0) return c;
    return {false, c.records, 0, "the signed chain head (" + head_path_ + ") is missing"};
  }
  auto h = json::parse(head, nullptr, false);
  std::string sig;
  if (!h.is_object() || !h.contains("seq") || !h["seq"].is_number_unsigned() ||
      !h.contains("hash") || !h["hash"].is_string() || !h.contains("signature") ||
      !h["signature"].is_string() || !from_hex(h["signature"].get<std::string>(), sig))
    return {false, c.records, 0, "the signed chain head (" + head_path_ + ") is damaged"};
  const uint64_t seq = h["seq"];
  const std::string hash = h["hash"];
  if (!check_(head_bytes(seq, hash), sig))
    return {false, c.records, 0,
            "the chain head's signature is not the node's (" + head_path_ + " was edited)"};
  if (seq > c.records)
    return {false, c.records, c.records + 1,
            "records " + std::to_string(c.records + 1) + " to " + std::to_string(seq) +
                " are missing (the log was truncated)"};
  if (seq > 0 && w.hashes[seq - 1] != hash)
    return {false, c.records, seq,
            "record " + std::to_string(seq) +
                " is not the one the node signed (the log's "
                "tail was rewritten)"};
  if (seq < c.records)
    return {false, c.records, seq + 1,
            "record " + std::to_string(seq + 1) +
                " and after are not covered by the node's "
                "signature (appended behind its back)"};
  return c;
}

} // namespace dsmil
