#include "actors/remote_client.hpp"

#include <fstream>
#include <sstream>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/remote_actor.hpp>

#include "actors/caf_glue.hpp"
#include "dsmil/fields_json.hpp"

namespace dsmil {

namespace {

result<std::string> read_text(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return make_error(errc::invalid_argument, std::string("cannot read the ") + what + " " + path +
                                                  " (missing, or not readable by this user)");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

} // namespace

result<request_signer> load_signer(const credential_files& c) {
  auto cert = read_text(c.cert, "certificate");
  if (!cert) return cert.err();
  auto key = read_text(c.key, "key");
  if (!key) return key.err();
  auto ca = read_text(c.ca, "CA certificate");
  if (!ca) return ca.err();
  if (auto info = read_cert(*ca); !info)
    return make_error(errc::invalid_argument, c.ca + " is not a PEM certificate");
  auto s = request_signer::load(*cert, *key);
  if (!s) return make_error(errc::invalid_argument, c.cert + ", " + c.key + ": " + s.err().message);
  return s;
}

status configure_client(caf::actor_system_config& cfg, const credential_files& c) {
  configure_actor_system(cfg, true);
  cfg.openssl_certificate = c.cert;
  cfg.openssl_key = c.key;
  cfg.openssl_cafile = c.ca;
  cfg.load<caf::openssl::manager>();
  return {};
}

result<gate_api> connect_node(caf::actor_system& sys, const std::string& host, uint16_t port) {
  auto g = caf::openssl::remote_actor<gate_api>(sys, host, port);
  if (g) return *g;
  const auto& e = g.error();
  if (e == caf::sec::unexpected_actor_messaging_interface)
    return make_error(errc::unavailable, "the node at " + host + ":" + std::to_string(port) +
                                             " speaks another version of the control protocol");
  if (e == caf::sec::disconnect_during_handshake)
    return make_error(errc::unavailable,
                      "the TLS handshake with " + host + ":" + std::to_string(port) +
                          " was refused: the node did not accept this certificate (not from its "
                          "CA, expired), or the node's certificate is not from --ca's CA");
  return make_error(errc::unavailable, "cannot connect to " + host + ":" + std::to_string(port) +
                                           " (" + from_caf(e).message + ")");
}

result<std::string> encode_request(const std::string& command, const nlohmann::json& args) {
  result<std::string> out = make_error(errc::invalid_argument, "unknown command '" + command + "'");
  with_request_type(command, [&](auto req) {
    auto why = from_json_fields(args, req);
    if (!why.empty()) {
      out = make_error(errc::invalid_argument, "malformed arguments: " + why);
      return;
    }
    std::vector<char> buf;
    caf::binary_serializer sink{nullptr, buf};
    if (auto err = sink(req)) {
      out = make_error(errc::internal, "cannot encode '" + command + "'");
      return;
    }
    out = std::string(buf.begin(), buf.end());
  });
  return out;
}

namespace {

control_reply unsent(const error& e) {
  nlohmann::json body = {{"error", {{"code", to_string(e.code)}, {"message", e.message}}}};
  return control_reply{static_cast<uint8_t>(e.code), e.message, body.dump()};
}

} // namespace

void ask_gate(caf::event_based_actor* self, const gate_api& gate, const request_signer& signer,
              const caf::duration& timeout, const std::string& command, const nlohmann::json& args,
              std::function<void(control_reply&)> done, std::function<void(caf::error&)> failed) {
  auto bytes = encode_request(command, args);
  if (!bytes) {
    auto r = unsent(bytes.err());
    done(r);
    return;
  }
  self->request(gate, timeout, challenge_request{})
      .then(
          [=](challenge& c) {
            auto sig = signer.sign(c.nonce, command, *bytes);
            if (!sig) {
              auto r = unsent(sig.err());
              done(r);
              return;
            }
            signed_request req{command, *bytes, signer.cert_der(), c.nonce, *sig};
            self->request(gate, timeout, std::move(req))
                .then([done](signed_reply& r) { done(r.reply); },
                      [failed](caf::error& e) { failed(e); });
          },
          [failed](caf::error& e) { failed(e); });
}

result<control_reply> ask_gate(caf::actor_system& sys, const gate_api& gate,
                               const request_signer& signer, caf::timespan timeout,
                               const std::string& command, const nlohmann::json& args,
                               gate_nonce* next) {
  auto bytes = encode_request(command, args);
  if (!bytes) return unsent(bytes.err());
  caf::scoped_actor self{sys};
  auto fresh_nonce = [&]() -> result<std::string> {
    result<std::string> out = make_error(errc::internal, "no nonce");
    self->request(gate, timeout, challenge_request{})
        .receive([&](challenge& c) { out = std::move(c.nonce); },
                 [&](caf::error& e) { out = from_caf(e); });
    return out;
  };
  auto attempt = [&](const std::string& nonce) -> result<signed_reply> {
    auto sig = signer.sign(nonce, command, *bytes);
    if (!sig) return sig.err();
    result<signed_reply> out = make_error(errc::internal, "no reply");
    signed_request req{command, *bytes, signer.cert_der(), nonce, *sig};
    self->request(gate, timeout, std::move(req))
        .receive([&](signed_reply& r) { out = std::move(r); },
                 [&](caf::error& e) { out = from_caf(e); });
    return out;
  };
  const auto now = std::chrono::steady_clock::now();
  const bool cached =
      next && !next->value.empty() && now - next->received < std::chrono::seconds(20);
  auto nonce = cached ? result<std::string>(next->value) : fresh_nonce();
  if (next) next->value.clear();
  if (!nonce) return nonce.err();
  auto r = attempt(*nonce);
  if (cached && r && r->reply.code == static_cast<uint8_t>(errc::permission_denied) &&
      r->reply.message.rfind("the request's nonce", 0) == 0) {
    nonce = fresh_nonce(); // the node restarted, or forgot it
    if (!nonce) return nonce.err();
    r = attempt(*nonce);
  }
  if (!r) return r.err();
  if (next) *next = {r->next_nonce, std::chrono::steady_clock::now()};
  return std::move(r->reply);
}

} // namespace dsmil
