// Where each component's image lives in a checkpoint (store format v1):
// the devices' records in the manifest's devices section, the configuration
// in its own chunk, the security component's PCRs in the signed evidence the
// store takes while signing, and every other component's records and
// streams as the checkpoint's streams "<component>/records/<name>" and
// "<component>/streams/<name>" (cut into chunks, deduplicated). This file is
// the one place that knows it: components, sagas and commands speak images.
#pragma once

#include "runtime/components/component.hpp"
#include "runtime/store/store.hpp"

namespace dsmil {

/// Takes checkpoint `req` of `image` (every component captured at one
/// instant). REQUIRES: the store's external synchronisation.
result<checkpoint_info> create_checkpoint(checkpoint_store& store, const checkpoint_request& req,
                                          const system_image& image);

/// The system image checkpoint `contents` holds (load() verified it; its
/// streams are read and checked here). Components it has nothing of are
/// absent from the map.
result<system_image> image_of(checkpoint_store& store, const checkpoint_contents& contents);

} // namespace dsmil
