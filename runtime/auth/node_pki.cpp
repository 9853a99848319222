#include "runtime/auth/node_pki.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "runtime/config/node_config.hpp"
#include "runtime/os/env.hpp"

namespace dsmil {

namespace {

constexpr int64_t day_s = 86400;
constexpr int64_t skew_s = 300; // certificates start 5 minutes back: clocks differ

std::string at(const std::string& data_dir, const char* name) {
  return data_dir + "/" + name;
}

int64_t now_s(env& e) {
  return e.now_unix_ns() / 1000000000;
}

cert_spec spec_for(env& e, const std::string& name, const std::string& role, int64_t days) {
  cert_spec s;
  s.name = name;
  s.role = role;
  s.not_before_s = now_s(e) - skew_s;
  s.not_after_s = now_s(e) + days * day_s;
  return s;
}

} // namespace

tls_files tls_files_of(const node_config& cfg) {
  if (!cfg.tls.own_pki())
    return {cfg.tls.ca_file, cfg.tls.cert_file, cfg.tls.key_file, cfg.tls.crl_file};
  return {at(cfg.data_dir, tls_layout::ca_cert), at(cfg.data_dir, tls_layout::node_cert),
          at(cfg.data_dir, tls_layout::node_key), at(cfg.data_dir, tls_layout::crl)};
}

result<std::shared_ptr<node_pki>> node_pki::open(env& e, const node_config& cfg,
                                                 std::function<void(const std::string&)> warn) {
  std::shared_ptr<node_pki> p(new node_pki(e));
  p->warn_ = warn ? std::move(warn) : [](const std::string&) {};
  p->data_dir_ = cfg.data_dir;
  p->own_ = cfg.tls.own_pki();
  p->files_ = tls_files_of(cfg);
  auto write = [&](const char* name, const std::string& text) {
    return write_durable(e, at(cfg.data_dir, tls_layout::dir), at(cfg.data_dir, name), text);
  };
  if (p->own_) {
    if (auto err = e.create_dirs(at(cfg.data_dir, tls_layout::dir))) return err;
    const bool fresh = !e.exists(p->files_.ca);
    if (fresh) {
      // The CA first: its key signs everything below.
      auto ca_key = new_private_key();
      if (!ca_key) return ca_key.err();
      auto ca = make_ca_cert(*ca_key, spec_for(e, "dsmil-recovery node CA", "", 3650));
      if (!ca) return ca.err();
      if (auto err = write(tls_layout::ca_key, *ca_key)) return err;
      auto node_key = new_private_key();
      if (!node_key) return node_key.err();
      auto pub = public_key_of(*node_key);
      if (!pub) return pub.err();
      auto spec = spec_for(e, "dsmild", "", 3650);
      spec.server = true;
      char host[256] = {};
      spec.dns_names = {"localhost"};
      if (gethostname(host, sizeof host - 1) == 0 && host[0] != '\0' &&
          std::string(host) != "localhost")
        spec.dns_names.push_back(host);
      spec.ip_addresses = {"127.0.0.1", "::1"};
      auto node_cert = issue_cert(*ca, *ca_key, *pub, spec);
      if (!node_cert) return node_cert.err();
      if (auto err = write(tls_layout::node_key, *node_key)) return err;
      if (auto err = write(tls_layout::node_cert, *node_cert)) return err;
      // Last: a CA certificate on disk means the rest is there.
      if (auto err = write(tls_layout::ca_cert, *ca)) return err;
      p->warn_("made the node's CA, its certificate and the admin credential under " +
               at(cfg.data_dir, tls_layout::dir));
    }
    auto issued = e.read_file(at(cfg.data_dir, tls_layout::issued));
    if (issued) {
      auto j = nlohmann::json::parse(*issued, nullptr, false);
      if (!j.is_array())
        return make_error(errc::integrity_error, at(cfg.data_dir, tls_layout::issued) +
                                                     " is not a JSON array; restore it from a "
                                                     "backup or remove it (revocations are lost)");
      for (auto& r : j)
        p->issued_.push_back({r.value("name", ""), r.value("role", ""), r.value("serial", ""),
                              r.value("not_after", int64_t{0}), r.value("revoked", false)});
    }
    // The admin credential: made with the CA, and again when it is gone or
    // ends within 30 days (the node's key is on disk: nothing is lost).
    auto admin = e.read_file(at(cfg.data_dir, tls_layout::admin_cert));
    result<cert_info> info = admin ? read_cert(*admin) : result<cert_info>(admin.err());
    if (!info || info->not_after_s < now_s(e) + 30 * day_s) {
      auto key = new_private_key();
      if (!key) return key.err();
      auto pub = public_key_of(*key);
      if (!pub) return pub.err();
      auto cred = p->issue("admin", role::admin, *pub, 365);
      if (!cred) return cred.err();
      if (auto err = write(tls_layout::admin_key, *key)) return err;
      if (auto err = write(tls_layout::admin_cert, cred->cert_pem)) return err;
      if (!fresh) p->warn_("renewed " + at(cfg.data_dir, tls_layout::admin_cert));
    }
  }
  for (auto* f : {&p->files_.ca, &p->files_.cert, &p->files_.key})
    if (!e.exists(*f))
      return make_error(errc::config_error, "[tls] " + *f +
                                                " does not exist; name the operator's PEM files "
                                                "in [tls] or leave them empty for the node's own");
  auto cert = e.read_file(p->files_.cert);
  if (!cert) return cert.err();
  auto key = e.read_file(p->files_.key);
  if (!key) return key.err();
  if (auto s = request_signer::load(*cert, *key); !s)
    return make_error(errc::config_error,
                      "[tls] " + p->files_.cert + ", " + p->files_.key + ": " + s.err().message);
  std::string crl;
  if (!p->files_.crl.empty() && e.exists(p->files_.crl)) {
    auto c = e.read_file(p->files_.crl);
    if (!c) return c.err();
    crl = *c;
  }
  std::lock_guard<std::mutex> lock(p->mu_);
  if (auto err = p->load_verifier(crl)) return err;
  return p;
}

status node_pki::load_verifier(const std::string& crl_pem) {
  auto ca = env_.read_file(files_.ca);
  if (!ca) return ca.err();
  auto v = request_verifier::make(*ca, crl_pem);
  if (!v)
    return make_error(v.err().code, files_.ca + (crl_pem.empty() ? "" : ", " + files_.crl) + ": " +
                                        v.err().message);
  verifier_ = *v;
  crl_text_ = crl_pem;
  crl_checked_ns_ = env_.steady_ns();
  return {};
}

std::shared_ptr<const request_verifier> node_pki::verifier() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!own_ && !files_.crl.empty() && env_.steady_ns() - crl_checked_ns_ > 1000000000) {
    crl_checked_ns_ = env_.steady_ns();
    auto c = env_.read_file(files_.crl);
    if (c && *c != crl_text_) {
      if (auto err = load_verifier(*c))
        warn_("[tls] crl_file " + files_.crl + ": " + err.message +
              "; still using the previous list");
    }
  }
  return verifier_;
}

status node_pki::save() {
  nlohmann::json j = nlohmann::json::array();
  std::vector<std::string> revoked;
  for (auto& r : issued_) {
    j.push_back({{"name", r.name},
                 {"role", r.role},
                 {"serial", r.serial},
                 {"not_after", r.not_after_s},
                 {"revoked", r.revoked}});
    if (r.revoked) revoked.push_back(r.serial);
  }
  const std::string dir = at(data_dir_, tls_layout::dir);
  if (auto err = write_durable(env_, dir, at(data_dir_, tls_layout::issued), j.dump(1) + "\n"))
    return err;
  auto ca = env_.read_file(files_.ca);
  if (!ca) return ca.err();
  auto ca_key = env_.read_file(at(data_dir_, tls_layout::ca_key));
  if (!ca_key) return ca_key.err();
  auto crl = make_crl(*ca, *ca_key, revoked, now_s(env_), 3650);
  if (!crl) return crl.err();
  if (auto err = write_durable(env_, dir, files_.crl, *crl)) return err;
  return load_verifier(*crl);
}

result<issued_credential> node_pki::issue(const std::string& name, role r,
                                          const std::string& public_key_pem, int days) {
  if (!own_)
    return make_error(errc::invalid_argument, "this node uses an operator's PKI ([tls] ca_file " +
                                                  files_.ca + "): issue credentials with that CA");
  if (name.empty() || name.size() > 64 || name.find_first_of("/\\\n\r\t\"") != std::string::npos ||
      name[0] == '.')
    return make_error(errc::invalid_argument,
                      "credential name '" + name +
                          "' must be 1-64 characters without slashes, quotes or control "
                          "characters, not starting with '.'");
  if (days < 1 || days > 3650)
    return make_error(errc::invalid_argument, "--days must be 1-3650, got " + std::to_string(days));
  auto ca = env_.read_file(files_.ca);
  if (!ca) return ca.err();
  auto ca_key = env_.read_file(at(data_dir_, tls_layout::ca_key));
  if (!ca_key) return ca_key.err();
  issued_credential out;
  auto cert = issue_cert(*ca, *ca_key, public_key_pem, spec_for(env_, name, enum_name(r), days),
                         &out.record.serial);
  if (!cert) return cert.err();
  out.cert_pem = *cert;
  out.ca_pem = *ca;
  out.record.name = name;
  out.record.role = enum_name(r);
  out.record.not_after_s = now_s(env_) + int64_t{days} * day_s;
  std::lock_guard<std::mutex> lock(mu_);
  issued_.push_back(out.record);
  if (auto err = save()) {
    issued_.pop_back();
    return err;
  }
  return out;
}

result<std::vector<std::string>> node_pki::revoke(const std::string& name) {
  if (!own_)
    return make_error(errc::invalid_argument,
                      "this node uses an operator's PKI ([tls] ca_file " + files_.ca +
                          "): revoke with that CA and update [tls] crl_file");
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> serials;
  for (auto& r : issued_)
    if (r.name == name && !r.revoked) {
      r.revoked = true;
      serials.push_back(r.serial);
    }
  if (serials.empty()) {
    bool known = false;
    for (auto& r : issued_)
      known = known || r.name == name;
    return make_error(known ? errc::invalid_argument : errc::not_found,
                      known ? "every credential named '" + name + "' is revoked already"
                            : "this node issued no credential named '" + name +
                                  "' ('dsmilctl tls list' shows those it did)");
  }
  if (auto err = save()) {
    for (auto& r : issued_)
      for (auto& s : serials)
        if (r.serial == s) r.revoked = false;
    return err;
  }
  return serials;
}

std::vector<issued_cert> node_pki::issued() {
  std::lock_guard<std::mutex> lock(mu_);
  return issued_;
}

} // namespace dsmil
