// A client of a node's control endpoint over mutual TLS (dsmilctl, the
// benchmark, tests, later other nodes): its credential, the connection, and
// commands signed per request (actors/gate_api.hpp).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <caf/fwd.hpp>
#include <nlohmann/json.hpp>

#include "actors/gate_api.hpp"
#include "dsmil/result.hpp"
#include "runtime/auth/pki.hpp"

namespace dsmil {

/// A credential's files: the client's certificate and key and the CA that
/// signed the node's certificate (PEM).
struct credential_files {
  std::string cert, key, ca;
};

/// Prepares a client's actor system: dsmil's messages, CAF's middleman and
/// OpenSSL module presenting `c` (checked first: one line naming the file
/// that is missing or does not fit).
status configure_client(caf::actor_system_config& cfg, const credential_files& c);

/// The signer of `c`'s requests.
result<request_signer> load_signer(const credential_files& c);

/// Connects to the node at HOST:PORT. A refused handshake (the node does
/// not accept the certificate, or the client not the node's) is
/// errc::unavailable with a line saying so.
result<gate_api> connect_node(caf::actor_system& sys, const std::string& host, uint16_t port);

/// The typed request for `command` with JSON `args`, encoded as the gate
/// decodes it; invalid_argument for an unknown command or bad arguments.
result<std::string> encode_request(const std::string& command, const nlohmann::json& args);

/// Sends `command` through the gate from the event-based actor `self`: a
/// nonce, then the request signed over it. `done` gets the answer, `failed`
/// what kept it from coming. Progress of a rollback arrives at `self` as
/// rollback_progress.
void ask_gate(caf::event_based_actor* self, const gate_api& gate, const request_signer& signer,
              const caf::duration& timeout, const std::string& command, const nlohmann::json& args,
              std::function<void(control_reply&)> done, std::function<void(caf::error&)> failed);

/// The nonce the node handed back with its last answer on a kept
/// connection: the next request signs it instead of asking for one (used
/// while younger than 20 s; the node keeps them 30 s).
struct gate_nonce {
  std::string value;
  std::chrono::steady_clock::time_point received;
};

/// The same, waiting. With `next`, a kept connection's nonce is used and
/// renewed (one round trip per command); a refused one is asked for anew once.
result<control_reply> ask_gate(caf::actor_system& sys, const gate_api& gate,
                               const request_signer& signer, caf::timespan timeout,
                               const std::string& command, const nlohmann::json& args,
                               gate_nonce* next = nullptr);

} // namespace dsmil
