#include "runtime/os/fault_env.hpp"

namespace dsmil {

namespace {

class fault_file final : public writable_file {
public:
  fault_file(fault_env& owner, std::unique_ptr<writable_file> base, std::string path)
      : owner_(owner), base_(std::move(base)), path_(std::move(path)) {}

  status append(std::string_view data) override { return base_->append(data); }
  status sync() override {
    if (owner_.take_sync_fault())
      return make_error(errc::io_error, "fsync failed for " + path_ + ": Input/output error");
    return base_->sync();
  }
  status close() override { return base_->close(); }

private:
  fault_env& owner_;
  std::unique_ptr<writable_file> base_;
  std::string path_;
};

} // namespace

bool fault_env::take_sync_fault() {
  int b = sync_budget_.load();
  if (b < 0) return false;
  if (b == 0) return true;
  sync_budget_ = b - 1;
  return false;
}

result<std::unique_ptr<writable_file>> fault_env::new_writable_file(const std::string& path,
                                                                    unsigned mode) {
  auto f = base_.new_writable_file(path, mode);
  if (!f) return f.err();
  return std::unique_ptr<writable_file>(new fault_file(*this, std::move(*f), path));
}

result<std::unique_ptr<writable_file>> fault_env::new_appendable_file(const std::string& path,
                                                                      unsigned mode) {
  auto f = base_.new_appendable_file(path, mode);
  if (!f) return f.err();
  return std::unique_ptr<writable_file>(new fault_file(*this, std::move(*f), path));
}

status fault_env::sync_dir(const std::string& dir) {
  if (take_sync_fault())
    return make_error(errc::io_error, "fsync failed for directory " + dir + ": Input/output error");
  return base_.sync_dir(dir);
}

} // namespace dsmil
