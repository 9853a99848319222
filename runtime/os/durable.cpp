// The durable-write helpers of env.hpp: every one goes tmp file, fsync,
// rename, fsync of the directory, through the env it is given.
#include <algorithm>
#include <functional>
#include <vector>

#include "runtime/os/env.hpp"

namespace dsmil {

std::string parent_dir(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

status write_synced(env& e, const std::string& tmp, std::string_view data, unsigned mode) {
  auto f = e.new_writable_file(tmp, mode);
  if (!f) return f.err();
  auto& file = **f;
  status err = file.append(data);
  if (!err) err = file.sync();
  if (err) {
    file.close();
    e.remove(tmp);
    return err;
  }
  return file.close();
}

namespace {

std::string tmp_path(const std::string& tmp_dir, const std::string& path) {
  return tmp_dir + "/" + path.substr(path.find_last_of('/') + 1) + ".tmp";
}

} // namespace

status write_durable(env& e, const std::string& tmp_dir, const std::string& path,
                     std::string_view data, unsigned mode) {
  auto tmp = tmp_path(tmp_dir, path);
  if (auto err = write_synced(e, tmp, data, mode)) return err;
  if (auto err = e.rename(tmp, path)) return err;
  return e.sync_dir(parent_dir(path));
}

namespace {

// Runs fn(0) .. fn(n - 1) at once through the env; returns the first error
// by index.
status run_all(env& e, size_t n, const std::function<status(size_t)>& fn) {
  std::vector<status> errs(n);
  e.run_parallel(n, [&](size_t i) { errs[i] = fn(i); });
  for (auto& err : errs)
    if (err) return err;
  return {};
}

} // namespace

status write_durable_pair(env& e, const std::string& tmp_dir, const durable_file& first,
                          const durable_file& second) {
  return write_durable_stages(e, tmp_dir, {{first}, {second}});
}

status write_durable_stages(env& e, const std::string& tmp_dir,
                            const std::vector<std::vector<durable_file>>& stages) {
  std::vector<const durable_file*> files;
  for (auto& stage : stages)
    for (auto& f : stage)
      files.push_back(&f);
  std::vector<std::string> tmps;
  for (auto* f : files)
    tmps.push_back(tmp_path(tmp_dir, f->path));
  size_t renamed = 0; // files (in stage order) renamed into place
  auto cleanup = [&](status err) {
    for (size_t i = renamed; i < tmps.size(); ++i)
      e.remove(tmps[i]);
    return err;
  };
  if (auto err = run_all(e, files.size(), [&](size_t i) {
        return write_synced(e, tmps[i], files[i]->data, files[i]->mode);
      }))
    return cleanup(err);
  for (auto& stage : stages) {
    std::vector<std::pair<std::string, std::string>> moves;
    for (auto& f : stage)
      moves.emplace_back(tmps[renamed + moves.size()], f.path);
    if (auto err = rename_durable(e, moves)) return cleanup(err); // removes what was not renamed
    renamed += stage.size();
  }
  return {};
}

status rename_durable(env& e, const std::vector<std::pair<std::string, std::string>>& moves) {
  std::vector<std::string> dirs;
  for (auto& [from, to] : moves) {
    if (auto err = e.rename(from, to)) return err;
    auto dir = parent_dir(to);
    if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
  }
  return run_all(e, dirs.size(), [&](size_t i) { return e.sync_dir(dirs[i]); });
}

status remove_durable(env& e, const std::string& path) {
  if (auto err = e.remove(path)) return err;
  return e.sync_dir(parent_dir(path));
}

std::vector<std::pair<std::string, unsigned>> loose_modes(env& e, const std::string& dir) {
  std::vector<std::pair<std::string, unsigned>> out;
  auto top = e.permissions(dir);
  if (!top) return out; // an env that keeps no bits, or no such directory
  if ((*top & 077) != 0) out.emplace_back(".", *top);
  std::vector<std::string> pending = {""};
  while (!pending.empty()) {
    const std::string rel = pending.back();
    pending.pop_back();
    auto names = e.list_dir(rel.empty() ? dir : dir + "/" + rel);
    if (!names) continue; // a file, or gone meanwhile
    for (auto& n : *names) {
      const std::string child = rel.empty() ? n : rel + "/" + n;
      auto mode = e.permissions(dir + "/" + child);
      if (!mode) continue;
      if ((*mode & 077) != 0) out.emplace_back(child, *mode);
      pending.push_back(child);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace dsmil
