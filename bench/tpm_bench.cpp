#include "bench/tpm_bench.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <csignal>
#include <fstream>
#include <unistd.h>
#include <vector>

#include "bench/bench_util.hpp"
#include "runtime/store/store.hpp"
#include "runtime/keys/tpm_key.hpp"

namespace dsmil::bench {

using nlohmann::json;

namespace {

// A swtpm for the run, stopped with the object.
class own_swtpm {
public:
  result<std::string> start(const std::string& dir) {
    dir_ = dir;
    const std::string script = std::string(DSMIL_SOURCE_DIR) + "/scripts/swtpm";
    FILE* p = ::popen(("'" + script + "' start '" + dir + "'").c_str(), "r");
    if (p == nullptr) return make_error(errc::unavailable, "cannot run " + script);
    char line[256] = {0};
    bool got = std::fgets(line, sizeof(line), p) != nullptr;
    int rc = ::pclose(p);
    if (!got || rc != 0)
      return make_error(errc::unavailable, "cannot start swtpm; install it with scripts/bootstrap "
                                           "--with-tpm, or pass --tcti");
    started_ = true;
    std::string tcti = line;
    while (!tcti.empty() && (tcti.back() == '\n' || tcti.back() == '\r'))
      tcti.pop_back();
    return tcti;
  }
  ~own_swtpm() {
    if (started_)
      std::system(
          ("'" + std::string(DSMIL_SOURCE_DIR) + "/scripts/swtpm' stop '" + dir_ + "'").c_str());
  }

private:
  std::string dir_;
  bool started_ = false;
};

device_state sample_device(device_id id, uint32_t v) {
  device_state d;
  d.id = id;
  d.registers.assign(16, v);
  d.enabled = true;
  return d;
}

// Counts the signatures a store asks for.
class counting_key final : public key_provider {
public:
  explicit counting_key(std::unique_ptr<key_provider> k) : k_(std::move(k)) {}
  std::string provider() const override { return k_->provider(); }
  std::string scheme() const override { return k_->scheme(); }
  std::string key_id() const override { return k_->key_id(); }
  std::string public_pem() const override { return k_->public_pem(); }
  result<std::string> sign_digest(const digest& d) override {
    ++signs;
    return k_->sign_digest(d);
  }
  result<platform_evidence> attest(const digest& q) override { return k_->attest(q); }
  result<uint64_t> counter() override { return k_->counter(); }
  result<uint64_t> advance_counter() override { return k_->advance_counter(); }
  std::string attestation_key_id() const override { return k_->attestation_key_id(); }
  unsigned signs = 0;

private:
  std::unique_ptr<key_provider> k_;
};

} // namespace

result<json> run_tpm_bench(const tpm_bench_options& o) {
  auto work = work_dir::make("tpm-bench", ""); // destroyed after `sim`, which stops swtpm first
  if (!work) return work.err();
  const std::string dir = (*work)->path();
  own_swtpm sim;
  std::string tcti = o.tcti;
  if (tcti.empty()) {
    auto t = sim.start(dir + "/swtpm");
    if (!t) return t.err();
    tcti = *t;
  }
  tpm_options to;
  to.tcti = tcti;
  auto opened = open_tpm_key(to);
  if (!opened) return opened.err();
  auto* key = new counting_key(std::move(*opened));
  std::unique_ptr<key_provider> owned(key);

  std::vector<double> sign_ms, attest_ms, tpm_ms, soft_ms;
  for (unsigned i = 0; i < o.runs; ++i) {
    const digest d = sha256("checkpoint " + std::to_string(i));
    double t0 = now_s();
    auto s = key->sign_digest(d);
    if (!s) return s.err();
    sign_ms.push_back((now_s() - t0) * 1e3);
    t0 = now_s();
    auto e = key->attest(d);
    if (!e) return e.err();
    attest_ms.push_back((now_s() - t0) * 1e3);
  }
  // Whole checkpoints (84 devices, signature, quote, counter, fsyncs), TPM
  // key and software key side by side.
  std::vector<device_state> devices;
  for (int g = 0; g < 7; ++g)
    for (int k = 0; k < 12; ++k)
      devices.push_back(sample_device(static_cast<device_id>(0x8000 + g * 16 + k), 0));
  key->signs = 0;
  auto tpm_store = checkpoint_store::open(env::posix(), dir + "/tpm-store", {}, std::move(owned));
  if (!tpm_store) return tpm_store.err();
  auto soft_store = checkpoint_store::open(env::posix(), dir + "/software-store");
  if (!soft_store) return soft_store.err();
  for (unsigned i = 0; i < o.runs; ++i) {
    devices[i % devices.size()].registers[0] = i + 1; // one device changed each time
    double t0 = now_s();
    auto a =
        (*tpm_store)->create({"bench", "", checkpoint_type::automatic}, devices, system_config{});
    if (!a) return a.err();
    tpm_ms.push_back((now_s() - t0) * 1e3);
    t0 = now_s();
    auto b =
        (*soft_store)->create({"bench", "", checkpoint_type::automatic}, devices, system_config{});
    if (!b) return b.err();
    soft_ms.push_back((now_s() - t0) * 1e3);
  }
  json r = {{"tcti", tcti},
            {"runs", o.runs},
            {"sign_p50_ms", percentile(sign_ms, 0.5)},
            {"sign_p99_ms", percentile(sign_ms, 0.99)},
            {"attest_p50_ms", percentile(attest_ms, 0.5)},
            {"attest_p99_ms", percentile(attest_ms, 0.99)},
            {"checkpoint_tpm_p50_ms", percentile(tpm_ms, 0.5)},
            {"checkpoint_tpm_p99_ms", percentile(tpm_ms, 0.99)},
            {"checkpoint_software_p50_ms", percentile(soft_ms, 0.5)},
            {"checkpoint_software_p99_ms", percentile(soft_ms, 0.99)},
            {"signs_per_checkpoint", static_cast<double>(key->signs) / o.runs}};
  return r;
}

void print_tpm_report(const json& r) {
  std::printf("tpm        %s, %u runs\n", r["tcti"].get<std::string>().c_str(),
              r["runs"].get<unsigned>());
  std::printf("sign       p50 %.2f ms, p99 %.2f ms (TPM2_Sign, ECDSA P-256)\n",
              r["sign_p50_ms"].get<double>(), r["sign_p99_ms"].get<double>());
  std::printf("attest     p50 %.2f ms, p99 %.2f ms (24 PCRs read, TPM2_Quote, NV counter "
              "increment and read)\n",
              r["attest_p50_ms"].get<double>(), r["attest_p99_ms"].get<double>());
  std::printf("checkpoint p50 %.2f ms, p99 %.2f ms signed in the TPM; p50 %.2f ms, p99 %.2f ms "
              "with the software key (84 devices, fsynced)\n",
              r["checkpoint_tpm_p50_ms"].get<double>(), r["checkpoint_tpm_p99_ms"].get<double>(),
              r["checkpoint_software_p50_ms"].get<double>(),
              r["checkpoint_software_p99_ms"].get<double>());
  std::printf("signatures per checkpoint: %.2f (one, over the manifest: off the data path)\n",
              r["signs_per_checkpoint"].get<double>());
}

} // namespace dsmil::bench
