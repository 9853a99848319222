#include "cli/ctl_commands.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <sstream>

#include <unistd.h>

#include "cli/render.hpp"
#include "dsmil/control.hpp"
#include "runtime/auth/node_pki.hpp"
#include "runtime/os/env.hpp"
#include "runtime/store/manifest.hpp"
#include "runtime/store/store.hpp"

namespace dsmil::cli {

using nlohmann::json;

namespace {

int die(const std::string& line, int code) {
  std::fprintf(stderr, "dsmilctl: %s\n", line.c_str());
  return code;
}

} // namespace

void add_access_commands(CLI::App& app, std::string& command, json& args, access_options& a) {
  auto* tls =
      app.add_subcommand("tls", "the credentials of the node's CA (admin)")->require_subcommand(1);
  auto* tissue = tls->add_subcommand(
      "issue", "make a key here and a certificate for it signed by the node's CA");
  tissue->add_option("NAME", a.name, "who it names (the certificate's CN)")->required();
  tissue->add_option("--role", a.role, "viewer, operator or admin")->required();
  tissue->add_option("--out", a.out_dir, "write NAME.crt, NAME.key (0600) and ca.crt here")
      ->required();
  tissue->add_option("--days", a.days, "valid this many days (default 365)");
  tissue->callback([&] {
    command = tls_issue_request::command;
    args["name"] = a.name;
    args["role"] = a.role;
    args["days"] = a.days;
  });
  auto* trevoke = tls->add_subcommand("revoke", "refuse NAME's credentials from now on");
  trevoke->add_option("NAME", a.name, "the certificate's CN")->required();
  trevoke->callback([&] {
    command = tls_revoke_request::command;
    args["name"] = a.name;
  });
  tls->add_subcommand("list", "every credential the node's CA issued")->callback([&] {
    command = tls_list_request::command;
  });

  auto* audit = app.add_subcommand("audit", "who changed what, and every refusal");
  audit->add_option("--since", a.since,
                    "from this UTC time on, e.g. 2026-12-03 or 2026-12-03T14:05");
  audit->add_option("--limit", a.limit, "the newest this many records");
  audit->callback([&] {
    if (command.empty()) command = audit_request::command;
    if (command == audit_request::command) {
      if (!a.since.empty()) args["since"] = a.since;
      if (a.limit != 0) args["limit"] = a.limit;
    }
  });
  audit->fallthrough();
  audit->add_subcommand("verify", "check the log's hash chain and the node's signature")
      ->callback([&] { command = audit_verify_request::command; });
}

result<credential_files> find_credential(const std::string& cert, const std::string& key,
                                         const std::string& ca, const std::string& data_dir) {
  auto pick = [&](const std::string& flag, const char* env, const char* in_data_dir) {
    if (!flag.empty()) return flag;
    if (const char* v = std::getenv(env); v && *v) return std::string(v);
    return data_dir + "/" + in_data_dir;
  };
  credential_files c{pick(cert, "DSMIL_CERT", tls_layout::admin_cert),
                     pick(key, "DSMIL_KEY", tls_layout::admin_key),
                     pick(ca, "DSMIL_CA", tls_layout::ca_cert)};
  for (auto* f : {&c.cert, &c.key, &c.ca})
    if (::access(f->c_str(), F_OK) != 0)
      return make_error(
          errc::invalid_argument,
          "no credential: " + *f +
              " does not exist; pass --cert, --key and --ca (or set DSMIL_CERT, DSMIL_KEY, "
              "DSMIL_CA), or --data-dir DIR of a node started on this machine (default ./data)");
  return c;
}

// An expired credential is refused by the node's TLS before any request:
// say so here, naming it.
status check_validity(const cert_info& c) {
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  auto when = [](int64_t s) { return format_time(s * 1000000000); };
  if (now > c.not_after_s)
    return make_error(errc::permission_denied,
                      "certificate '" + c.name + "' expired at " + when(c.not_after_s) +
                          "; ask an admin for a new one (dsmilctl tls issue)");
  if (now < c.not_before_s)
    return make_error(errc::permission_denied, "certificate '" + c.name + "' is not valid before " +
                                                   when(c.not_before_s) +
                                                   " (is this machine's clock right?)");
  return {};
}

status check_out_dir(const std::string& dir, const std::string& name) {
  if (::access(dir.c_str(), W_OK) != 0)
    return make_error(errc::invalid_argument,
                      "--out " + dir + " is not a directory this user can write to");
  for (auto ext : {".crt", ".key"})
    if (::access((dir + "/" + name + ext).c_str(), F_OK) == 0)
      return make_error(errc::invalid_argument,
                        dir + "/" + name + ext +
                            " exists; remove it or pick another --out (nothing issued)");
  return {};
}

int write_credential(const std::string& dir, const std::string& name, const std::string& key,
                     const json& body, bool as_json) {
  auto& e = env::posix();
  const std::string crt = dir + "/" + name + ".crt", k = dir + "/" + name + ".key",
                    ca = dir + "/ca.crt";
  for (auto& [path, text] : {std::pair{k, key}, std::pair{crt, body.value("cert", std::string())},
                             std::pair{ca, body.value("ca", std::string())}})
    if (auto err = write_durable(e, dir, path, text))
      return die("the node issued the certificate but writing " + path + " failed (" + err.message +
                     "); revoke it with 'dsmilctl tls revoke " + name + "'",
                 1);
  if (!as_json) {
    const auto& c = body["credential"];
    std::cout << "issued " << name << " (role " << c.value("role", "") << ") until "
              << c.value("not_after", "") << ": " << crt << ", " << k << ", " << ca << "\n"
              << "use it with: dsmilctl --cert " << crt << " --key " << k << " --ca " << ca
              << " status\n";
  }
  return 0;
}

// Parses "0x1F", "31" as a 32-bit register value.
bool parse_value(const std::string& s, int64_t& out) {
  if (s.empty() || s[0] == '-') return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (errno != 0 || end != s.c_str() + s.size() || v > 0xFFFFFFFFull) return false;
  out = static_cast<int64_t>(v);
  return true;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// `checkpoint verify` against a store directory: no node, no TPM, nothing
// written (the store opens read-only).
int verify_offline(const std::string& dir, const json& args, bool as_json) {
  store_options o;
  o.read_only = true;
  auto store = checkpoint_store::open(env::posix(), dir, o);
  if (!store) return die(store.err().message, exit_code(store.err().code));
  auto id = (*store)->resolve(args.value("id", ""));
  if (!id) return die(id.err().message, exit_code(id.err().code));
  const bool chain = args.value("chain", false), quick = args.value("quick", false);
  auto report = chain ? (*store)->verify_chain(*id) : (*store)->verify(*id, quick);
  json body = {{"id", *id}, {"valid", report.ok()}, {"chain", chain}};
  if (report) body["checks"] = report->checks;
  if (as_json)
    std::cout << body.dump(2) << "\n";
  else if (report)
    render(checkpoint_verify_request::command, body, std::cout);
  if (!report) return die(report.err().message, exit_code(report.err().code));
  return 0;
}

} // namespace dsmil::cli
