#include "actors/node_client.hpp"

#include <caf/all.hpp>

#include "actors/caf_glue.hpp"
#include "dsmil/fields_json.hpp"

namespace dsmil {

namespace {

template <class T> struct reply_type { using type = T; };

// The answer to a request that was never sent: `why` says what is wrong.
control_reply bad_arguments(const std::string& why) {
  nlohmann::json body = {
      {"error", {{"code", to_string(errc::invalid_argument)}, {"message", why}}}};
  return control_reply{static_cast<uint8_t>(errc::invalid_argument), why, body.dump()};
}

// Calls `send(request, reply_type<its answer>)` with the command's typed
// request; false (and `why`) for an unknown command or arguments that do
// not fit it.
template <class Send>
bool with_request(const std::string& command, const nlohmann::json& args, std::string& why,
                  Send&& send) {
  const bool typed = with_request_type(command, [&](auto req) {
    using R = decltype(req);
    why = from_json_fields(args, req);
    if (!why.empty())
      why = "malformed arguments: " + why;
    else
      send(std::move(req), reply_type<answer<typename R::reply>>{});
  });
  if (!typed) why = "unknown command '" + command + "'";
  return why.empty();
}

} // namespace

void ask_node(caf::event_based_actor* self, const node_api& node, const caf::duration& timeout,
              const std::string& command, const nlohmann::json& args,
              std::function<void(control_reply&)> done, std::function<void(caf::error&)> failed) {
  std::string why;
  auto sent = with_request(command, args, why, [&](auto req, auto tag) {
    using reply_t = typename decltype(tag)::type;
    self->request(node, timeout, std::move(req))
        .then(
            [done](reply_t& a) {
              auto r = to_control_reply(a);
              done(r);
            },
            [failed](caf::error& e) { failed(e); });
  });
  if (!sent) {
    auto r = bad_arguments(why);
    done(r);
  }
}

result<control_reply> ask_node(caf::actor_system& sys, const node_api& node, caf::timespan timeout,
                               const std::string& command, const nlohmann::json& args) {
  caf::scoped_actor self{sys};
  result<control_reply> out = make_error(errc::internal, "no reply");
  std::string why;
  auto sent = with_request(command, args, why, [&](auto req, auto tag) {
    using reply_t = typename decltype(tag)::type;
    self->request(node, timeout, std::move(req))
        .receive([&](reply_t& a) { out = to_control_reply(a); },
                 [&](caf::error& e) { out = from_caf(e); });
  });
  if (!sent) return bad_arguments(why);
  return out;
}

} // namespace dsmil
