import time, torch, ctypes, os
N=512<<20
libc=ctypes.CDLL("libc.so.6")
def fresh(huge):
    raw=torch.empty(N+(2<<20),dtype=torch.uint8); st=(-raw.data_ptr())%(2<<20); b=raw[st:st+N]
    if huge: libc.madvise(ctypes.c_void_p(b.data_ptr()), ctypes.c_size_t(N), 14)
    return raw,b
for huge in (False, True, False, True):
    raw,b=fresh(huge); t=time.perf_counter(); b.fill_(1); dt=time.perf_counter()-t
    print(f"huge={huge} first touch 512MB {dt:.2f}s ({N/1e9/dt:.2f} GB/s)", flush=True)
    t=time.perf_counter(); b.fill_(2); dt=time.perf_counter()-t
    print(f"   second touch {dt:.2f}s ({N/1e9/dt:.2f} GB/s)", flush=True)
    del raw,b
