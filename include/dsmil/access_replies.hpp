// What the node says about who may use it (dsmil/control.hpp: tls.* and
// audit commands): the credentials its CA issued and the audit log, with
// their fields() lists.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dsmil {

/// A credential the node's CA issued.
struct credential_view {
  std::string name; ///< the certificate's CN: who it names
  std::string role; ///< its OU: viewer, operator or admin
  std::string serial;
  std::string not_after; ///< RFC 3339 UTC
  bool revoked = false;
};

struct tls_issue_reply {
  credential_view credential;
  std::string cert; ///< PEM, signed by the node's CA
  std::string ca;   ///< the CA's certificate, PEM
};

struct tls_revoke_reply {
  std::string name;
  std::vector<std::string> serials; ///< revoked now
};

struct tls_list_reply {
  bool own_ca = true;  ///< false: an operator's PKI ([tls] ca_file)
  std::string ca_file; ///< the CA clients need (--ca)
  std::vector<credential_view> credentials;
};

/// One record of the audit log.
struct audit_record_view {
  uint64_t seq = 0;
  std::string at;
  std::string identity;
  std::string role;
  std::string command; ///< the typed command's name, e.g. rollback
  std::string target;  ///< what it named (a checkpoint, device, credential), may be empty
  std::string outcome; ///< ok, failed: ..., denied: ...
};

struct audit_reply {
  std::vector<audit_record_view> records;
};

struct audit_verify_reply {
  bool valid = true;
  uint64_t records = 0;
  uint64_t first_bad = 0; ///< the first wrong record (0: none, or the signed head)
  std::string problem;    ///< one line; empty when valid
  std::string log;        ///< the log's path on the node
};

template <class F> void fields(F& f, credential_view& x) {
  f("name", x.name), f("role", x.role), f("serial", x.serial), f("not_after", x.not_after),
      f("revoked", x.revoked);
}
template <class F> void fields(F& f, tls_issue_reply& x) {
  f("credential", x.credential), f("cert", x.cert), f("ca", x.ca);
}
template <class F> void fields(F& f, tls_revoke_reply& x) {
  f("name", x.name), f("serials", x.serials);
}
template <class F> void fields(F& f, tls_list_reply& x) {
  f("own_ca", x.own_ca), f("ca_file", x.ca_file), f("credentials", x.credentials);
}
template <class F> void fields(F& f, audit_record_view& x) {
  f("seq", x.seq), f("at", x.at), f("identity", x.identity), f("role", x.role),
      f("command", x.command), f("target", x.target), f("outcome", x.outcome);
}
template <class F> void fields(F& f, audit_reply& x) {
  f("records", x.records);
}
template <class F> void fields(F& f, audit_verify_reply& x) {
  f("valid", x.valid), f("records", x.records), f("first_bad", x.first_bad),
      f("problem", x.problem), f("log", x.log);
}

} // namespace dsmil
