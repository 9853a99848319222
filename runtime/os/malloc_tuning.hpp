// For programs (dsmild, dsmil-bench), not the library: glibc serves every
// allocation over 128 KiB with its own mmap and unmaps it on free, so each
// agent snapshot (256 KiB), and each copy of one, page-faults in afresh; on
// a virtual machine the faults cost more than the copying. Kept in the heap
// (up to 32 MiB an allocation, 64 MiB of free top kept), the node reuses
// that memory: dsmil-bench agents --runs 10, checkpoint p99 231 -> 120 ms,
// full rollback p99 707 -> 497 ms. An embedding runtime decides this for its own
// process (mallopt, or MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_).
#pragma once

#include <malloc.h>

namespace dsmil {

inline void keep_large_allocations_in_heap() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

} // namespace dsmil
