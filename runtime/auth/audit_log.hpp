// The audit log: who changed what, and every refusal. One append-only file
// of JSON lines, <data_dir>/audit/audit.log (outside store/: deleting
// checkpoints never touches it):
//
//   {"seq":1,"at":"...","identity":"alice","role":"operator","command":"rollback",
//    "target":"3f2a...","outcome":"ok","prev":"<hex>","hash":"<hex>"}
//
// hash = SHA-256(prev || the record's JSON without "hash"), prev the hash of
// the record before (64 zeros for the first): editing or removing a record
// breaks the chain after it. After every append the chain head (seq, hash)
// is signed with the node's key into audit/head.sig, so truncating the log
// or rewriting its tail is found too.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dsmil/result.hpp"

namespace dsmil {

class env;

namespace audit_layout {
inline constexpr const char* dir = "audit";
inline constexpr const char* log = "audit/audit.log";
inline constexpr const char* head = "audit/head.sig";
} // namespace audit_layout

struct audit_record {
  uint64_t seq = 0;
  std::string at; ///< RFC 3339 UTC
  std::string identity, role, command, target, outcome;
};

/// What audit verify found.
struct audit_check {
  bool valid = true;
  uint64_t records = 0;
  uint64_t first_bad = 0; ///< the first record that is wrong (0: none / the head)
  std::string problem;    ///< one line
};

class audit_log {
public:
  /// Signs the chain head / checks a head signature (the node's key).
  using sign_fn = std::function<result<std::string>(const std::string& bytes)>;
  using check_fn = std::function<bool(const std::string& bytes, const std::string& sig)>;

  /// Opens (creating) <data_dir>/audit. A damaged log is not refused: the
  /// node keeps appending and `problem()` says what is wrong.
  /// `warn` gets what an operator should know, one line each.
  static result<std::unique_ptr<audit_log>> open(env& e, const std::string& data_dir, sign_fn sign,
                                                 check_fn check,
                                                 std::function<void(const std::string&)> warn);

  /// Appends one record (fsynced) and signs the new head.
  status append(audit_record r);
  /// Records at or after `since_ns` (0: all), oldest first.
  result<std::vector<audit_record>> read(int64_t since_ns = 0);
  /// Walks the whole chain and the signed head.
  audit_check verify();
  /// What open() found wrong, empty when nothing.
  const std::string& problem() const { return problem_; }

private:
  audit_log(env& e) : env_(e) {}
  std::string head_bytes(uint64_t seq, const std::string& hash) const;

  env& env_;
  std::string log_path_, head_path_, dir_;
  sign_fn sign_;
  check_fn check_;
  std::mutex mu_;
  uint64_t seq_ = 0;
  std::string last_hash_;
  std::string problem_;
};

} // namespace dsmil
