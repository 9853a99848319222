#include "runtime/keys/fallback_key.hpp"

#include <atomic>

namespace dsmil {

namespace {

class breaker_key final : public key_provider {
public:
  breaker_key(env& e, std::unique_ptr<key_provider> tpm, std::unique_ptr<key_provider> software,
              breaker_config cfg)
      : env_(e), tpm_(std::move(tpm)), software_(std::move(software)), breaker_(cfg),
        active_(tpm_.get()) {}

  // Which key signs is decided when a checkpoint starts (attest), so that its
  // evidence, its manifest's signer and its signature agree.
  std::string provider() const override { return active_.load()->provider(); }
  std::string scheme() const override { return active_.load()->scheme(); }
  std::string key_id() const override { return active_.load()->key_id(); }
  std::string public_pem() const override { return active_.load()->public_pem(); }

  result<platform_evidence> attest(const digest& q) override {
    std::lock_guard<std::mutex> guard(mu_);
    active_ = tpm_.get();
    return call<platform_evidence>([&] { return tpm_->attest(q); }, platform_evidence{});
  }

  result<std::string> sign_digest(const digest& d) override {
    std::lock_guard<std::mutex> guard(mu_);
    if (active_ == software_.get()) return software_->sign_digest(d);
    auto r = call<std::string>([&] { return tpm_->sign_digest(d); }, std::string());
    if (r && active_ == software_.get()) return software_->sign_digest(d);
    return r;
  }

  result<uint64_t> counter() override { return tpm_->counter(); }
  result<uint64_t> advance_counter() override { return tpm_->advance_counter(); }
  std::string attestation_key_id() const override { return tpm_->attestation_key_id(); }
  std::string attestation_public_pem() const override { return tpm_->attestation_public_pem(); }
  result<std::vector<std::pair<int, std::string>>> read_pcrs() override {
    return tpm_->read_pcrs();
  }
  result<std::string> seal(const std::string& s) override { return tpm_->seal(s); }
  result<std::string> unseal(const std::string& b) override { return tpm_->unseal(b); }

private:
  int64_t now_ms() { return env_.steady_ns() / 1000000; }

  // Runs `f` on the TPM through the breaker. On a TPM failure (or an open
  // breaker) with a software key, switches this checkpoint to it and
  // returns `empty`; without one, returns the error.
  template <class T, class F> result<T> call(F&& f, T empty) {
    error why;
    if (!breaker_.allow(now_ms())) {
      why = make_error(errc::circuit_open,
                       "the TPM circuit breaker is open after " +
                           std::to_string(breaker_.consecutive_failures()) +
                           " failures (last: " + last_failure_ + "); next try in " +
                           std::to_string(breaker_.retry_in_ms(now_ms()) / 1000) + " s");
    } else {
      result<T> r = f();
      if (r) {
        breaker_.on_success();
        return r;
      }
      if (r.err().code != errc::unavailable) return r; // not the TPM's availability
      breaker_.on_failure(now_ms());
      last_failure_ = r.err().message;
      why = r.err();
    }
    if (!software_) return why;
    active_ = software_.get();
    return empty;
  }

  env& env_;
  std::unique_ptr<key_provider> tpm_, software_;
  circuit_breaker breaker_;
  std::atomic<key_provider*> active_; // read by provider() and key_id() from any thread
  std::string last_failure_;
  std::mutex mu_;
};

} // namespace

std::unique_ptr<key_provider> with_tpm_breaker(env& e, std::unique_ptr<key_provider> tpm,
                                               std::unique_ptr<key_provider> software,
                                               breaker_config cfg) {
  return std::make_unique<breaker_key>(e, std::move(tpm), std::move(software), cfg);
}

} // namespace dsmil
