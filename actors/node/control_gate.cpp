#include "actors/node/control_gate.hpp"

#include <algorithm>
#include <unordered_map>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/caf_glue.hpp"
#include "actors/node/command_classes.hpp"
#include "actors/node_client.hpp"
#include "runtime/auth/audit_log.hpp"
#include "runtime/auth/node_pki.hpp"
#include "runtime/base/crypto.hpp"
#include "runtime/os/env.hpp"

namespace dsmil {

namespace {

using forward_atom = caf::atom_constant<caf::atom("forward")>;
using audited_atom = caf::atom_constant<caf::atom("audited")>;

} // namespace

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, audit_record& r) {
  return f(caf::meta::type_name("audit_record"), r.seq, r.at, r.identity, r.role, r.command,
           r.target, r.outcome);
}

namespace {

// dsmil.audit appends the gate's records one at a time on a thread of its
// own: an append is fsynced and signs the chain head (milliseconds), so
// neither the gate nor CAF's scheduler threads wait on the disk; a client
// is answered once its record is written (or why not is logged). It ends
// after the gate (records sent before are written first).
using audit_api = caf::typed_actor<caf::replies_to<audit_record>::with<audited_atom>>;

class audit_writer final : public audit_api::base {
public:
  audit_writer(caf::actor_config& cfg, std::shared_ptr<audit_log> log, caf::actor_addr gate)
      : audit_api::base(cfg), log_(std::move(log)), gate_(std::move(gate)) {}
  const char* name() const override { return "dsmil.audit"; }

protected:
  behavior_type make_behavior() override {
    monitor(gate_);
    set_down_handler([this](caf::down_msg&) { quit(); });
    return {[this](audit_record& r) {
      const auto what = r.command + " " + r.outcome + " by " + r.identity;
      if (auto err = log_->append(std::move(r)))
        spdlog::error("audit log: cannot append ({}): {} is not recorded", err.message, what);
      return audited_atom::value;
    }};
  }

private:
  std::shared_ptr<audit_log> log_;
  caf::actor_addr gate_;
};

control_reply refusal(const std::string& line) {
  nlohmann::json body = {
      {"error", {{"code", to_string(errc::permission_denied)}, {"message", line}}}};
  return control_reply{static_cast<uint8_t>(errc::permission_denied), line, body.dump()};
}

control_reply bad_request(const std::string& line) {
  nlohmann::json body = {
      {"error", {{"code", to_string(errc::invalid_argument)}, {"message", line}}}};
  return control_reply{static_cast<uint8_t>(errc::invalid_argument), line, body.dump()};
}

// What a command names, for the audit: a checkpoint, device, agent or
// credential, a configuration key.
template <class R> std::string target_of(R req) {
  nlohmann::json j = to_json_fields(req);
  for (const std::string key : {"id", "name", "key"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) continue;
    std::string v = *it;
    if (!v.empty()) return v;
  }
  if constexpr (std::is_same<R, rollback_request>::value)
    if (req.undo) return "undo";
  return {};
}

struct gate_state {
  node_api node;
  std::shared_ptr<node_pki> pki;
  std::shared_ptr<audit_log> audit;
  env* os = nullptr;
  int64_t nonce_life_ns = 0;
  audit_api writer; ///< dsmil.audit, spawned by the gate
  /// Nonces carry what the gate needs to check them (see issue_nonce): it
  /// keeps no state per nonce it hands out, only the ones signed requests
  /// have used, until they expire.
  std::string nonce_key;                         ///< HMAC key, random per gate
  std::unordered_map<std::string, int64_t> used; ///< nonce -> when it was issued (steady)
  size_t sweep_at = 1024;
  /// Refusals logged in the current second, and those only audited.
  int64_t log_second = 0;
  uint32_t logged = 0, unlogged = 0;

  // At most 20 refusal lines a second: a client refused in a loop fills
  // the audit log (every refusal is there), not the node's log. Those past
  // 20 are counted in one line, logged with the next refusal after.
  void log_refusal(const std::string& command, const std::string& identity,
                   const std::string& why) {
    const int64_t second = os->steady_ns() / 1000000000;
    if (second != log_second) {
      if (unlogged > 0)
        spdlog::warn("control: {} more refusal(s) in one second were not logged one by one; "
                     "'dsmilctl audit' lists them",
                     unlogged);
      log_second = second;
      logged = unlogged = 0;
    }
    if (++logged > 20) return void(++unlogged);
    spdlog::warn("control: refused {} from {}: {}", command.empty() ? "a request" : command,
                 identity, why);
  }

  static audit_record record(const std::string& identity, const std::string& role,
                             const std::string& command, const std::string& target,
                             const std::string& outcome) {
    audit_record r;
    r.identity = identity;
    r.role = role;
    r.command = command;
    r.target = target;
    r.outcome = outcome;
    return r;
  }

  // dsmil.audit did not answer: it stopped with the node (a failed append
  // it logs itself and answers).
  static void unrecorded(const std::string& what, const caf::error& e) {
    spdlog::error("audit log: {} is not recorded ({})", what, caf::to_string(e));
  }

  // A refused request: logged, audited, answered with one line (and the
  // next nonce) once its record is written; the gate goes on meanwhile.
  caf::result<signed_reply> refuse(gate_api::pointer self, const std::string& identity,
                                   const std::string& role, const std::string& command,
                                   const std::string& target, control_reply answer) {
    log_refusal(command, identity, answer.message);
    auto reply = signed_reply{std::move(answer), issue_nonce()};
    auto rp = self->make_response_promise<signed_reply>();
    self->request(writer, caf::infinite,
                  record(identity, role, command, target, "denied: " + reply.reply.message))
        .then([=](audited_atom) mutable { rp.deliver(reply); },
              [=](caf::error& e) mutable {
                unrecorded(command + " refused for " + identity, e);
                rp.deliver(reply);
              });
    return caf::delegated<signed_reply>{};
  }

  // When the nonce was issued (steady ns), if this gate issued it; -1 if not.
  int64_t issued_at(const std::string& nonce) const {
    if (nonce.size() != 32) return -1;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(EVP_sha256(), nonce_key.data(), static_cast<int>(nonce_key.size()),
         reinterpret_cast<const uint8_t*>(nonce.data()), 16, mac, &len);
    if (CRYPTO_memcmp(mac, nonce.data() + 16, 16) != 0) return -1;
    int64_t t = 0;
    for (int i = 0; i < 8; ++i)
      t = (t << 8) | static_cast<uint8_t>(nonce[i]);
    return t;
  }

  // When `nonce` was issued, if a signed request may use it: issued here,
  // not older than nonce_life_ns, not used yet; -1 if not.
  int64_t fresh(const std::string& nonce, int64_t now) const {
    const int64_t t = issued_at(nonce);
    return t >= 0 && now - t <= nonce_life_ns && !used.count(nonce) ? t : -1;
  }

  // Once a request's signature holds: its nonce (issued at `issued`) is spent.
  void spend(const std::string& nonce, int64_t issued, int64_t now) {
    used.emplace(nonce, issued);
    if (used.size() < sweep_at) return;
    for (auto it = used.begin(); it != used.end();)
      it = now - it->second > nonce_life_ns ? used.erase(it) : std::next(it);
    sweep_at = std::max<size_t>(1024, 2 * used.size());
  }

  // A fresh nonce: when (8 bytes, steady ns, big-endian), 8 random bytes,
  // and the first 16 bytes of their HMAC-SHA-256 under this gate's key. A
  // client asking for nonces without end costs the gate nothing it keeps.
  std::string issue_nonce() {
    std::string nonce(32, '\0');
    auto* p = reinterpret_cast<uint8_t*>(nonce.data());
    uint64_t now = static_cast<uint64_t>(os->steady_ns());
    for (int i = 7; i >= 0; --i, now >>= 8)
      p[i] = static_cast<uint8_t>(now);
    random_bytes(p + 8, 8);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(EVP_sha256(), nonce_key.data(), static_cast<int>(nonce_key.size()), p, 16, mac, &len);
    std::copy(mac, mac + 16, p + 16);
    return nonce;
  }
};

// Hands one accepted request to the node and its answer to the client
// (the gate delegated the client's request here); passes a rollback's
// progress on; audits the outcome of a command that changes something.
template <class R>
caf::behavior forwarder(caf::event_based_actor* self, std::shared_ptr<gate_state> st, R req,
                        std::string identity, std::string role, bool audited,
                        std::string next_nonce) {
  return {[=](forward_atom) {
    // Before the promise: making it moves the sender out of the message.
    auto client = caf::actor_cast<caf::actor>(self->current_sender());
    auto rp = self->make_response_promise<signed_reply>();
    // A rollback's progress, as it runs, is the client's.
    self->become([=](rollback_progress& p) {
      if (client) self->send(client, std::move(p));
    });
    auto finish = [=](control_reply r) mutable {
      auto reply = signed_reply{std::move(r), next_nonce};
      if (!audited) {
        rp.deliver(std::move(reply));
        return self->quit();
      }
      auto deliver = [=]() mutable {
        rp.deliver(reply);
        self->quit();
      };
      self->request(st->writer, caf::infinite,
                    gate_state::record(identity, role, R::command, target_of(req),
                                       reply.reply.code == 0
                                           ? "ok"
                                           : std::string("failed: ") + reply.reply.message))
          .then([=](audited_atom) mutable { deliver(); },
                [=](caf::error& e) mutable {
                  gate_state::unrecorded(std::string(R::command) + " by " + identity, e);
                  deliver();
                });
    };
    using A = answer<typename R::reply>;
    auto on_error = [=](caf::error& e) mutable {
      auto err = from_caf(e);
      nlohmann::json body = {{"error", {{"code", to_string(err.code)}, {"message", err.message}}}};
      finish(control_reply{static_cast<uint8_t>(err.code), err.message, body.dump()});
    };
    if constexpr (std::is_same<R, rollback_request>::value) {
      self->request(st->node, caf::infinite, rollback_by{identity, req})
          .then([=](A& a) mutable { finish(to_control_reply(a)); }, on_error);
    } else {
      self->request(st->node, caf::infinite, req)
          .then([=](A& a) mutable { finish(to_control_reply(a)); }, on_error);
    }
  }};
}

gate_api::behavior_type gate(gate_api::pointer self, std::shared_ptr<gate_state> st) {
  // The gate ends with the node; dsmil.audit after it.
  st->writer = self->spawn<audit_writer, caf::detached>(st->audit, self->address());
  self->monitor(st->node);
  self->set_down_handler([self](caf::down_msg& dm) { self->quit(dm.reason); });
  return {
      [=](challenge_request) { return challenge{st->issue_nonce()}; },
      [=](signed_request& in) -> caf::result<signed_reply> {
        const int64_t now = st->os->steady_ns();
        // Until the certificate is checked, its name is only a claim.
        auto claimed = read_cert(in.cert);
        const std::string who = "unverified:" + (claimed ? claimed->name : std::string("?"));
        const int64_t issued = st->fresh(in.nonce, now);
        if (issued < 0)
          return st->refuse(self, who, "", in.command, "",
                            refusal("the request's nonce is unknown, used or older than " +
                                    std::to_string(st->nonce_life_ns / 1000000000) +
                                    " s; send it again with a new one"));
        auto holder = st->pki->verifier()->verify(in.cert, in.nonce, in.command, in.request,
                                                  in.signature, st->os->now_unix_ns() / 1000000000);
        if (!holder)
          return st->refuse(self, who, "", in.command, "", refusal(holder.err().message));
        st->spend(in.nonce, issued, now);
        auto r = parse_enum<role>(holder->role);
        if (!r)
          return st->refuse(self, holder->name, holder->role, in.command, "",
                            refusal("certificate '" + holder->name + "' names no role (its OU " +
                                    "must be " + enum_choices<role>() + ", is '" + holder->role +
                                    "')"));
        caf::result<signed_reply> out = signed_reply{};
        bool typed = with_request_type(in.command, [&](auto req) {
          using R = decltype(req);
          caf::binary_deserializer src{self->system(), in.request.data(), in.request.size()};
          if (auto err = src(req); err || src.remaining() != 0) {
            out = st->refuse(self, holder->name, holder->role, in.command, "",
                             bad_request("the request does not decode as '" + in.command + "'"));
            return;
          }
          const auto& rule = rule_for(req);
          if (!may(*r, rule.least)) {
            out = st->refuse(self, holder->name, holder->role, R::command, target_of(req),
                             refusal("permission denied: " + holder->name + " (role " +
                                     holder->role + ") may not " + rule.refusal));
            return;
          }
          auto fwd = self->spawn(forwarder<R>, st, std::move(req), holder->name, holder->role,
                                 rule.least != role::viewer, st->issue_nonce());
          self->delegate(caf::actor_cast<caf::actor>(fwd), forward_atom::value);
          out = caf::delegated<signed_reply>{};
        });
        if (!typed)
          return st->refuse(self, holder->name, holder->role, in.command, "",
                            bad_request("unknown command '" + in.command + "'"));
        return out;
      },
  };
}

} // namespace

gate_api spawn_control_gate(caf::actor_system& sys, node_api node, std::shared_ptr<node_pki> pki,
                            std::shared_ptr<audit_log> audit, env& e, int64_t nonce_life_ms) {
  auto st = std::make_shared<gate_state>();
  st->node = std::move(node);
  st->pki = std::move(pki);
  st->audit = std::move(audit);
  st->os = &e;
  st->nonce_life_ns = nonce_life_ms * 1000000;
  st->nonce_key.resize(32);
  random_bytes(reinterpret_cast<uint8_t*>(st->nonce_key.data()), st->nonce_key.size());
  return sys.spawn(gate, st);
}

} // namespace dsmil
