// `tls issue|revoke|list` and `audit [verify]`: the node's CA and its audit
// log (who may be let in, and what they did). Who may *ask* is the control
// gate's business (actors/node/control_gate.cpp); these run once it let
// the request through.
#include "actors/node/node_impl.hpp"
#include "runtime/store/manifest.hpp"

namespace dsmil {

namespace {

credential_view view_of(const issued_cert& c) {
  return {c.name, c.role, c.serial, format_time(c.not_after_s * 1000000000), c.revoked};
}

// "2026-12-03", "2026-12-03T14", "2026-12-03T14:05:09.5Z": a prefix of an
// RFC 3339 UTC time as the log writes it.
bool time_prefix(const std::string& s) {
  static const std::string shape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (s.size() < 4 || s.size() > shape.size()) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (shape[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(s[i])) : s[i] != shape[i])
      return false;
  return true;
}

} // namespace

answer<tls_issue_reply> run(node_context& ctx, actor_calls&, const tls_issue_request& req) {
  auto r = parse_enum<role>(req.role);
  if (!r)
    return fail(make_error(errc::invalid_argument,
                           "--role must be " + enum_choices<role>() + ", got '" + req.role + "'"));
  if (req.days < 1 || req.days > 3650)
    return fail(make_error(errc::invalid_argument,
                           "--days must be 1-3650, got " + std::to_string(req.days)));
  auto cred = ctx.pki->issue(req.name, *r, req.public_key, static_cast<int>(req.days));
  if (!cred) return fail(cred.err());
  tls_issue_reply b;
  b.credential = view_of(cred->record);
  b.cert = cred->cert_pem;
  b.ca = cred->ca_pem;
  return ok(std::move(b));
}

answer<tls_revoke_reply> run(node_context& ctx, actor_calls&, const tls_revoke_request& req) {
  auto serials = ctx.pki->revoke(req.name);
  if (!serials) return fail(serials.err());
  return ok(tls_revoke_reply{req.name, *serials});
}

answer<tls_list_reply> run(node_context& ctx, actor_calls&, const tls_list_request&) {
  tls_list_reply b;
  b.own_ca = ctx.pki->own_ca();
  b.ca_file = ctx.pki->files().ca;
  for (auto& c : ctx.pki->issued())
    b.credentials.push_back(view_of(c));
  return ok(std::move(b));
}

answer<audit_reply> run(node_context& ctx, actor_calls&, const audit_request& req) {
  if (!req.since.empty() && !time_prefix(req.since))
    return fail(make_error(errc::invalid_argument,
                           "--since must be a UTC time like 2026-12-03 or 2026-12-03T14:05, got '" +
                               req.since + "'"));
  if (req.limit < 0)
    return fail(make_error(errc::invalid_argument,
                           "--limit must be 0 or more, got " + std::to_string(req.limit)));
  auto records = ctx.audit->read();
  if (!records) return fail(records.err());
  audit_reply b;
  for (auto& r : *records)
    if (req.since.empty() || r.at >= req.since)
      b.records.push_back({r.seq, r.at, r.identity, r.role, r.command, r.target, r.outcome});
  if (req.limit > 0 && b.records.size() > static_cast<size_t>(req.limit))
    b.records.erase(b.records.begin(), b.records.end() - req.limit);
  return ok(std::move(b));
}

answer<audit_verify_reply> run(node_context& ctx, actor_calls&, const audit_verify_request&) {
  auto c = ctx.audit->verify();
  audit_verify_reply b{c.valid, c.records, c.first_bad, c.problem,
                       ctx.cfg.data_dir + "/" + audit_layout::log};
  if (c.valid) return ok(std::move(b));
  return fail_with(make_error(errc::integrity_error, "the audit log is damaged: " + c.problem),
                   std::move(b));
}

} // namespace dsmil
