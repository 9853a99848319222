// The rollback saga journal: one append-only file per saga under
// <store>/journal/<saga>.wal. Every record is checksummed and fsynced before
// append() returns, so after a crash the journal says how far the saga got:
// begin (with the plan and the pre-rollback checkpoint), phase, step start,
// step done, compensate start/done, end. A torn record can only be the last
// one; reading stops there.
//
//   record := u32 length | u64 crc64(length, payload) | payload (JSON object)
//
// The records themselves are the types of records.hpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dsmil/result.hpp"
#include "runtime/os/env.hpp"
#include "runtime/saga/records.hpp"

namespace dsmil {

class saga_journal {
public:
  /// Starts the journal of a new saga; fails when one with this id exists.
  static result<std::unique_ptr<saga_journal>> create(env& e, const std::string& dir,
                                                      const std::string& saga_id);
  /// Reopens an interrupted saga's journal to append to it. A torn last
  /// record is cut off first (rewritten durably), so new records follow the
  /// intact ones.
  static result<std::unique_ptr<saga_journal>> reopen(env& e, const std::string& dir,
                                                      const std::string& saga_id);

  /// Appends one record and fsyncs it. The record gets `at` (the env's
  /// Unix ns) when it has none. After a failed append the journal is broken:
  /// what reached the file is unknown, and every later append fails.
  status append(journal_record record);
  /// Appends several records with one write and one fsync (group commit):
  /// for records that only need to be durable before the same next step.
  /// A crash leaves a prefix of them.
  status append_all(std::vector<journal_record> records);

  const std::string& path() const { return path_; }
  /// Every record read at reopen and appended since, in order.
  const std::vector<journal_record>& records() const { return records_; }

private:
  saga_journal(env& e, std::string path) : env_(e), path_(std::move(path)) {}
  env& env_;
  std::string path_;
  std::unique_ptr<writable_file> file_;
  std::vector<journal_record> records_;
  bool broken_ = false; ///< an append or fsync failed: no further appends
};

/// The intact records of one journal file, in order. `torn` is set when
/// bytes after the last intact record were cut off. An intact record that is
/// not a known record (a newer version wrote it, or it was altered) is an
/// integrity_error naming the file: it is never cut off as if torn.
result<std::vector<journal_record>> read_journal(env& e, const std::string& path,
                                                 bool* torn = nullptr);

/// Ids of every saga with a journal in `dir`, oldest first (ids are
/// time-ordered).
result<std::vector<std::string>> list_journals(env& e, const std::string& dir);

/// The path of a saga's journal.
std::string journal_path(const std::string& dir, const std::string& saga_id);

} // namespace dsmil
