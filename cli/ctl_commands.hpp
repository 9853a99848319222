// dsmilctl's pieces beside main(): the tls and audit commands, finding a
// credential, writing an issued one, the offline verify, argument parsing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "actors/remote_client.hpp"
#include "dsmil/result.hpp"
#include "runtime/auth/pki.hpp"

namespace dsmil::cli {

/// What `tls issue|revoke|list` and `audit [verify]` were given.
struct access_options {
  std::string name, role, out_dir;
  int64_t days = 365;
  std::string since;
  int64_t limit = 0;
};
/// Adds the tls and audit subcommands; their callbacks set `command` and
/// `args`.
void add_access_commands(CLI::App& app, std::string& command, nlohmann::json& args,
                         access_options& a);

/// --cert/--key/--ca, else $DSMIL_CERT/$DSMIL_KEY/$DSMIL_CA, else the admin
/// credential of the node whose data dir is `data_dir`, each file on its
/// own; invalid_argument naming the first that does not exist.
result<credential_files> find_credential(const std::string& cert, const std::string& key,
                                         const std::string& ca, const std::string& data_dir);
/// permission_denied when the certificate has expired or is not valid yet.
status check_validity(const cert_info& c);
/// `tls issue`'s --out: writable, and NAME.crt/NAME.key not there yet.
status check_out_dir(const std::string& dir, const std::string& name);
/// Writes NAME.key, NAME.crt and ca.crt of an issued credential; the exit code.
int write_credential(const std::string& dir, const std::string& name, const std::string& key,
                     const nlohmann::json& body, bool as_json);

/// "0x1F", "31" as a 32-bit register value.
bool parse_value(const std::string& s, int64_t& out);
/// "a,b,,c" -> a, b, c.
std::vector<std::string> split(const std::string& s);
/// `checkpoint verify` against a store directory: no node, no TPM, nothing
/// written (the store opens read-only). The exit code.
int verify_offline(const std::string& dir, const nlohmann::json& args, bool as_json);

} // namespace dsmil::cli
