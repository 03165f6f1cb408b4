// The test side of the CUDA-on-CPU runtime (runtime.cpp): the device the next launches see, the injected
// allocation failure, the race probe, the memory a launch may write, and the launch log.
#pragma once
#include <cstddef>
#include <string>

namespace cuda_cpu {

// Makes the device with these properties current (cudaSetDevice), adding it to the device list on first use:
// the kernels' device() caches properties per device id, so each distinct set gets its own id.
void use_device(int sm_count, int max_threads_per_sm, bool memory_pools);
// cudaMallocAsync fails (cudaErrorMemoryAllocation) while set.
void set_alloc_failure(bool fail);
// Race probe: every launch runs twice from the same memory, the second time with the blocks in reverse order
// and the threads of each block in a new random order between every two synchronisation points; any
// difference in the memory the launch can write aborts. That memory: the regions below and live allocations.
void set_race_probe(bool on);
void add_region(void* p, size_t bytes);
void clear_regions();

// Memory with a PROT_NONE page on each side, placed so that its end is within `align` bytes of the trailing
// guard and its address is `residue` modulo `align` (a copy keeps the 16-byte alignment class of the data it
// copies). The slack up to the guard holds a canary that guarded_free checks.
void* guarded_alloc(size_t bytes, size_t align, size_t residue);
void guarded_free(void* p);
size_t live_allocations();  // cudaMallocAsync blocks not yet freed

// What the launches since the last call did, one line each: "launch <kernel> grid=x,y,z block=x,y,z smem=n",
// "alloc <bytes>", "alloc-failed <bytes>", "free"; cleared by the call.
std::string take_log();

}  // namespace cuda_cpu
