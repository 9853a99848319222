// What a TPM key is opened with, checked and written as text: no tpm2-tss here.
#include <cstdio>

#include "runtime/keys/tpm_key.hpp"

namespace dsmil {

std::string format_tpm_handle(uint32_t handle) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", handle);
  return buf;
}

result<uint32_t> parse_tpm_handle(const std::string& text) {
  try {
    size_t used = 0;
    unsigned long v = std::stoul(text, &used, 0);
    if (used == text.size() && v >= 0x81000000ul && v <= 0x81FFFFFFul)
      return static_cast<uint32_t>(v);
  } catch (...) {
  }
  return make_error(errc::config_error, "TPM handle '" + text +
                                            "' is not a persistent handle (0x81000000-"
                                            "0x81FFFFFF), e.g. 0x81010001");
}

status check_tpm_options(const tpm_options& o) {
  for (const auto* list : {&o.seal_pcrs, &o.pcrs})
    for (int i : *list)
      if (i < 0 || i > 23)
        return make_error(errc::config_error,
                          "PCR " + std::to_string(i) + " does not exist: PCRs are 0-23");
  return {};
}

} // namespace dsmil
