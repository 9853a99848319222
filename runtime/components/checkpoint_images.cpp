#include "runtime/components/checkpoint_images.hpp"

#include <cstring>

#include "runtime/components/configuration_component.hpp"
#include "runtime/components/devices_component.hpp"
#include "runtime/components/security_component.hpp"
#include "runtime/store/state_codec.hpp"

namespace dsmil {

namespace {

constexpr const char* records_part = "/records/";
constexpr const char* streams_part = "/streams/";

byte_source from_string(const std::string& bytes) {
  auto at = std::make_shared<size_t>(0);
  return [&bytes, at](uint8_t* buf, size_t cap) -> result<size_t> {
    const size_t n = std::min(cap, bytes.size() - *at);
    std::memcpy(buf, bytes.data() + *at, n);
    *at += n;
    return n;
  };
}

} // namespace

result<checkpoint_info> create_checkpoint(checkpoint_store& store, const checkpoint_request& req,
                                          const system_image& image) {
  std::vector<device_state> devices;
  system_config configuration;
  std::vector<stream_ref> streams;
  for (auto& [name, img] : image) {
    if (name == "devices") {
      auto d = devices_component::decode(img);
      if (!d) return d.err();
      devices = std::move(*d);
    } else if (name == "configuration") {
      auto c = configuration_component::decode(img);
      if (!c) return c.err();
      configuration = std::move(*c);
    } else if (name == "security") {
      continue; // the store reads the PCRs and quotes them while signing
    } else {
      for (auto& [part, map] :
           {std::pair{records_part, &img.records}, std::pair{streams_part, &img.streams}})
        for (auto& [key, bytes] : *map) {
          auto ref = store.write_stream(name + part + key, from_string(bytes));
          if (!ref) return ref.err();
          streams.push_back(std::move(*ref));
        }
    }
  }
  return store.create(req, devices, configuration, streams);
}

result<system_image> image_of(checkpoint_store& store, const checkpoint_contents& contents) {
  system_image out;
  auto& devices = out["devices"];
  for (auto& s : contents.devices)
    devices.records.emplace(devices_component::record_name(s.id), encode_device(s));
  out["configuration"] = configuration_component::encode(contents.configuration);
  // Without a TPM there are no PCRs: the component is there, empty.
  out["security"] = security_component::encode(contents.security.pcrs);
  for (auto& s : contents.streams) {
    for (auto part : {records_part, streams_part}) {
      auto at = s.name.find(part);
      if (at == std::string::npos || at == 0) continue;
      std::string bytes;
      bytes.reserve(s.size);
      auto err = store.read_stream(s, [&](std::string_view run) -> status {
        bytes.append(run);
        return {};
      });
      if (err) return err;
      auto& img = out[s.name.substr(0, at)];
      auto& map = std::strcmp(part, records_part) == 0 ? img.records : img.streams;
      map[s.name.substr(at + std::strlen(part))] = std::move(bytes);
      break;
    }
  }
  return out;
}

} // namespace dsmil
