#include "runtime/keys/tpm_quote.hpp"

#include "runtime/keys/key_provider.hpp"

namespace dsmil {

namespace {

constexpr uint32_t tpm_generated_value = 0xff544347;
constexpr uint16_t st_attest_quote = 0x8018;
constexpr uint16_t alg_sha256 = 0x000B;

// Big-endian reader that never reads past the end.
class be_reader {
public:
  explicit be_reader(const std::string& s) : s_(s) {}
  bool u8(uint8_t& v) { return take(1, v); }
  bool u16(uint16_t& v) { return take(2, v); }
  bool u32(uint32_t& v) { return take(4, v); }
  bool u64(uint64_t& v) { return take(8, v); }
  bool bytes(size_t n, std::string& out) {
    if (s_.size() - pos_ < n) return false;
    out = s_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool tpm2b(std::string& out) {
    uint16_t n = 0;
    return u16(n) && bytes(n, out);
  }

private:
  template <class T> bool take(size_t n, T& v) {
    if (s_.size() - pos_ < n) return false;
    v = 0;
    for (size_t i = 0; i < n; ++i)
      v = static_cast<T>((v << 8) | static_cast<uint8_t>(s_[pos_ + i]));
    pos_ += n;
    return true;
  }
  const std::string& s_;
  size_t pos_ = 0;
};

error bad(const std::string& what) {
  return make_error(errc::integrity_error, "quote: " + what);
}

} // namespace

result<quote_fields> parse_quote(const std::string& attest) {
  be_reader in(attest);
  uint32_t magic = 0, reset = 0, restart = 0, count = 0;
  uint16_t type = 0;
  uint8_t safe = 0;
  uint64_t clock = 0, firmware = 0;
  std::string signer;
  quote_fields q;
  if (!in.u32(magic) || !in.u16(type) || !in.tpm2b(signer) || !in.tpm2b(q.extra_data) ||
      !in.u64(clock) || !in.u32(reset) || !in.u32(restart) || !in.u8(safe) || !in.u64(firmware) ||
      !in.u32(count))
    return bad("truncated attestation structure");
  if (magic != tpm_generated_value) return bad("not made by a TPM (magic)");
  if (type != st_attest_quote) return bad("not a quote (attestation type)");
  for (uint32_t s = 0; s < count; ++s) {
    uint16_t hash = 0;
    uint8_t size = 0;
    std::string select;
    if (!in.u16(hash) || !in.u8(size) || !in.bytes(size, select))
      return bad("truncated PCR selection");
    if (hash != alg_sha256) continue;
    for (int i = 0; i < 8 * size; ++i)
      if ((static_cast<uint8_t>(select[static_cast<size_t>(i / 8)]) >> (i % 8)) & 1)
        q.pcrs.push_back(i);
  }
  if (!in.tpm2b(q.pcr_digest)) return bad("truncated PCR digest");
  q.clock = clock;
  q.reset_count = reset;
  return q;
}

result<std::string> pcr_composite_digest(const std::vector<std::pair<int, std::string>>& pcrs) {
  std::string all;
  for (auto& [index, value] : pcrs) {
    std::string raw;
    if (!from_hex(value, raw) || raw.size() != 32)
      return bad("PCR " + std::to_string(index) + " is not a SHA-256 value");
    all += raw;
  }
  const digest d = sha256(all);
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

status verify_quote(const std::string& attest, const std::string& signature_der,
                    const std::string& ak_public_pem, const digest& qualifying,
                    const std::vector<std::pair<int, std::string>>& pcrs) {
  if (auto err = verify_digest(ak_public_pem, sha256(attest), signature_der))
    return bad("the attestation key's signature does not match (" + err.message + ")");
  auto q = parse_quote(attest);
  if (!q) return q.err();
  if (q->extra_data !=
      std::string(reinterpret_cast<const char*>(qualifying.data()), qualifying.size()))
    return bad("its qualifying data is not this manifest's merkle root (a quote of another "
               "checkpoint)");
  std::vector<int> indices;
  for (auto& p : pcrs)
    indices.push_back(p.first);
  if (q->pcrs != indices) return bad("it covers other PCRs than the manifest lists");
  auto composite = pcr_composite_digest(pcrs);
  if (!composite) return composite.err();
  if (*composite != q->pcr_digest)
    return bad("its PCR digest does not match the PCR values in the manifest");
  return {};
}

} // namespace dsmil
