// The component interface: what every part of the system state a checkpoint
// holds implements (configuration, security, devices; later database and
// agents; and whatever a host adds). Checkpoints and rollback sagas reach
// components only through it, in the order they are configured, so a new
// component needs no change to the saga, the store or the CLI.
//
// Threads: a node calls one component from one thread at a time (its
// handler), never two methods at once. Pure interface: no I/O here.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dsmil/result.hpp"
#include "runtime/store/chunker.hpp"
#include "runtime/store/stream_types.hpp"
#include "runtime/saga/records.hpp"
#include "runtime/saga/saga_types.hpp"

namespace dsmil {

/// The bytes of one stream in an image: immutable and shared, so an image
/// (tens of MiB of agent state) is passed between actors, cached, planned
/// against and kept for compensation without copying its state. Reads as a
/// `const std::string&`; equal when the bytes are.
class stream_bytes {
public:
  stream_bytes() = default;
  explicit stream_bytes(std::string bytes)
      : p_(std::make_shared<const std::string>(std::move(bytes))) {}
  const std::string& str() const { return p_ ? *p_ : empty(); }
  operator const std::string&() const { return str(); }
  operator std::string_view() const { return str(); }
  size_t size() const { return str().size(); }
  /// The very same bytes (not only equal ones): nothing to compare.
  bool shares(const stream_bytes& o) const { return p_ == o.p_; }

  friend bool operator==(const stream_bytes& a, const stream_bytes& b) {
    return a.shares(b) || a.str() == b.str();
  }
  friend bool operator!=(const stream_bytes& a, const stream_bytes& b) { return !(a == b); }
  friend bool operator==(const stream_bytes& a, std::string_view b) { return a.str() == b; }
  friend bool operator!=(const stream_bytes& a, std::string_view b) { return a.str() != b; }
  friend bool operator==(std::string_view a, const stream_bytes& b) { return a == b.str(); }
  friend bool operator!=(std::string_view a, const stream_bytes& b) { return a != b.str(); }

private:
  static const std::string& empty() {
    static const std::string none;
    return none;
  }
  std::shared_ptr<const std::string> p_;
};

/// A component's state at one instant, as a checkpoint holds it: small named
/// records (one per item it can restore on its own: a device, the
/// configuration), named streams (large state, cut into chunks and
/// deduplicated by the store) and stored streams (state too large to hold in
/// memory, which the component writes to the store and reads back itself,
/// through its stream_port).
struct component_image {
  std::map<std::string, std::string> records;
  std::map<std::string, stream_bytes> streams;
  /// Streams capture() wrote through the port, by key: a checkpoint names
  /// them as they are; an image read back from a checkpoint gives them as
  /// these refs, never their bytes. Equal when their chunks are.
  std::map<std::string, stream_ref> stored;
  /// What the capture had to force (an agent cancelled because it did not
  /// quiesce in time), for the reply. Not stored.
  std::vector<std::string> warnings;
  /// Figures of the capture merged into the checkpoint's reply under the
  /// component's name (the pause each agent saw). Not stored.
  nlohmann::json detail = nlohmann::json::object();
  /// The chunk sizes the store cuts its streams into, when not the store's
  /// (state that changes in small places: smaller chunks, less stored
  /// anew). Not stored: the chunk lists are.
  std::optional<chunker_params> chunking;
  /// Equal state: records, streams and stored streams.
  bool operator==(const component_image& o) const {
    if (records != o.records || streams != o.streams || stored.size() != o.stored.size())
      return false;
    for (auto a = stored.begin(), b = o.stored.begin(); a != stored.end(); ++a, ++b)
      if (a->first != b->first || !same_chunks(a->second, b->second)) return false;
    return true;
  }
};

/// How a component with state too large for memory reaches the store: it
/// writes a stream during capture() (the chunks are durable, and belong to
/// the checkpoint that names the image's `stored` ref) and reads one back
/// in apply() and read_back(). The node gives it one over its store.
/// Thread-safe: the store takes changes one at a time.
class stream_port {
public:
  virtual ~stream_port() = default;
  /// Cuts `src` into chunks (`chunking`, else the store's sizes) and stores
  /// those not stored yet. Give a stream the same sizes every time: it
  /// dedups with its last version only then.
  virtual result<stream_ref> write(const std::string& name, const byte_source& src,
                                   const std::optional<chunker_params>& chunking) = 0;
  struct input {
    std::string name;
    byte_source source;
    std::optional<chunker_params> chunking;
  };
  /// Several streams, in order: each source is read to its end before the
  /// next is first called, and after a failure no later one is. The store
  /// keeps them in one pack, made durable once (not once a stream).
  virtual result<std::vector<stream_ref>> write_all(const std::vector<input>& streams) {
    std::vector<stream_ref> out;
    for (auto& s : streams) {
      auto ref = write(s.name, s.source, s.chunking);
      if (!ref) return ref.err();
      out.push_back(std::move(*ref));
    }
    return out;
  }
  /// Streams `s` back in order, every chunk checked; `sink` takes runs of
  /// about 1 MiB, one call at a time.
  virtual status read(const stream_ref& s, const byte_sink& sink) = 0;
};

/// Every component's image, by component name.
using system_image = std::map<std::string, component_image>;

/// What a rollback asks of one component.
struct plan_request {
  rollback_type type = rollback_type::full;
  /// Everything the component holds (full, emergency, incremental, or the
  /// component named in a selective rollback). When false, only `items`.
  bool whole = true;
  /// Within the component: items it understands (devices take "0x8031" and
  /// "group:3"). Empty with !whole: the component is not selected.
  std::vector<std::string> items;
};

/// What a rollback of one component will do, and what to warn about.
struct component_plan {
  /// Steps in restore order; each restores `items` (or the whole component
  /// when it has none). Compensation undoes them in reverse.
  std::vector<saga_step> steps;
  bool differs = false; ///< its current state differs from the checkpoint's
  std::vector<std::string> warnings;
  /// Items the change of which needs the operator's acknowledgement
  /// (--ack-critical), as a person reads them: "0x8000 (boot integrity)".
  std::vector<std::string> needs_ack;
  /// Component-specific detail for the dry run, merged into the reply's
  /// "plan" object; and into the reply itself.
  nlohmann::json plan_detail = nlohmann::json::object();
  nlohmann::json reply_detail = nlohmann::json::object();
};

/// Every item of `step` failed with `why` (the whole component, named, when
/// the step names no items): what a step that could not run at all reports.
inline std::vector<failed_item> every_item_failed(const saga_step& step, const std::string& why) {
  if (step.items.empty()) return {{step.component, why}};
  std::vector<failed_item> out;
  for (auto& i : step.items)
    out.push_back({i, why});
  return out;
}

class component {
public:
  virtual ~component() = default;

  /// Its name in checkpoints, plans, journals and replies. Stable.
  virtual std::string name() const = 0;
  /// An optional component that cannot be reached is recorded absent from a
  /// checkpoint, with a warning; a required one fails the checkpoint.
  virtual bool optional() const { return false; }

  /// Its state now, at one instant. Changes nothing. Errors name what could
  /// not be read; errc::unavailable when the component cannot be reached.
  virtual result<component_image> capture() = 0;

  /// The steps that roll `now` back to `target` (both from capture(), now
  /// or when the checkpoint was taken), with warnings. Pure: reads and
  /// changes nothing. Errors: a selection the component does not know.
  virtual result<component_plan> plan(const component_image& now, const component_image& target,
                                      const plan_request& request) = 0;

  /// Puts one step's items into their state in `target`. Idempotent: an
  /// item already in its state is not written (a rollback that is resumed,
  /// or a compensation after a refused write, repeats steps). Returns what
  /// could not be put back; what it did put back stays.
  virtual std::vector<failed_item> apply(const saga_step& step, const component_image& target) = 0;

  /// Reads one step's items back and names each that is not bit for bit
  /// in its state in `target`. Changes nothing.
  virtual std::vector<failed_item> read_back(const saga_step& step,
                                             const component_image& target) = 0;

  /// A rollback starts: until release(), the component's state changes only
  /// through apply() (an agent runtime parks its agents), so what capture()
  /// reads next is what the rollback compensates to. Returns warnings (what
  /// had to be forced); an error refuses the rollback, with nothing held.
  /// Default: nothing changes by itself.
  virtual result<std::vector<std::string>> hold() { return std::vector<std::string>{}; }
  /// The rollback ended, whichever way: the component runs again. Returns
  /// warnings (what could not be restarted). Releasing what is not held
  /// does nothing.
  virtual std::vector<std::string> release() { return {}; }
};

} // namespace dsmil
