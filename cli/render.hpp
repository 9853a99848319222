// Human-readable output of dsmilctl, from the node's JSON answers.
#pragma once

#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

namespace dsmil {

/// Prints `body`, the answer to `command`, for a person. A body that only
/// carries an error prints nothing (the error line goes to stderr).
void render(const std::string& command, const nlohmann::json& body, std::ostream& out);

} // namespace dsmil
